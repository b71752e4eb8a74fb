// kafkajs with @kafkajs/confluent-schema-registry (avsc) as an
// interoperability peer for our Confluent wire format, through the same
// Schema Registry and, for produce and consume, the same broker
// (KAFKA_BOOTSTRAP_SERVERS).
//
//   node avro_peer.js decode URL          stdin: [{"topic": T, "hex": H}, ...]; prints the
//                                         records the library decodes from those bytes
//                                         (absent optional fields left out), in order
//   node avro_peer.js encode URL          stdin: [{"topic": T, "schema": S, "payload": P}, ...];
//                                         registers S under <T>-<record full name>
//                                         (TopicRecordNameStrategy) and prints the hex of
//                                         what the library encodes for each
//   node avro_peer.js produce URL TOPIC   stdin: [{"key": K, "attributes": A, "schema": S,
//                                         "payload": P}, ...]; produces each to TOPIC with
//                                         kafkajs as a binary-mode CloudEvent (ce_ headers
//                                         from A, content-type application/avro,
//                                         ce_dataschema naming the schema); prints
//                                         [{"partition", "offset"}, ...]
//   node avro_peer.js consume URL TOPIC N reads N committed records of TOPIC from the
//                                         start with kafkajs; prints
//                                         [{"key", "headers", "data"}, ...]
//
// NODE_PATH names the node_modules scripts/nodeenv.sh installed. Output is
// one JSON list on stdout; kafkajs logs go to stderr.
const { Kafka, Partitioners, logLevel } = require('kafkajs')
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')
const { ConfluentSchemaRegistryError } = require('@kafkajs/confluent-schema-registry/dist/errors')

const DEADLINE_MS = 60000

function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, withoutNulls(v)]))
  }
  return value
}

function kafka() {
  return new Kafka({
    clientId: 'avro-peer-js',
    brokers: process.env.KAFKA_BOOTSTRAP_SERVERS.split(','),
    logLevel: logLevel.WARN,
    // kafkajs logs to the console (stdout) by default, where our answer goes.
    logCreator: () => ({ namespace, level, log }) =>
      process.stderr.write(`kafkajs ${namespace} level ${level}: ${JSON.stringify(log)}\n`),
  })
}

async function register(registry, topic, schema) {
  const parsed = JSON.parse(schema)
  const fullName = parsed.namespace ? `${parsed.namespace}.${parsed.name}` : parsed.name
  const subject = `${topic}-${fullName}`
  const schemaSpec = { type: SchemaType.AVRO, schema }
  // Already registered (by a processor or another client): use its id.
  // register() would also refuse a subject whose compatibility level is
  // not the library's default, which is the registry owner's choice.
  try {
    return await registry.getRegistryIdBySchema(subject, schemaSpec)
  } catch (e) {
    // The library's own error class (exactly) is how it reports a 404.
    if (e.constructor !== ConfluentSchemaRegistryError) throw e
  }
  const { id } = await registry.register(schemaSpec, { subject })
  return id
}

async function decode(registry, url, [items]) {
  const out = []
  for (const item of items) {
    out.push(withoutNulls(await registry.decode(Buffer.from(item.hex, 'hex'))))
  }
  return out
}

async function encode(registry, url, [items]) {
  const out = []
  for (const item of items) {
    const id = await register(registry, item.topic, item.schema)
    out.push((await registry.encode(id, item.payload)).toString('hex'))
  }
  return out
}

async function produce(registry, url, [topic, items]) {
  // The Java clients' murmur2 partitioner: a key lands where our processors expect it.
  const producer = kafka().producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true })
  await producer.connect()
  try {
    const ids = new Map()
    const messages = []
    for (const item of items) {
      if (!ids.has(item.schema)) ids.set(item.schema, await register(registry, topic, item.schema))
      const id = ids.get(item.schema)
      const headers = { ce_specversion: '1.0' }
      for (const [name, value] of Object.entries(item.attributes)) headers[`ce_${name}`] = String(value)
      headers.ce_dataschema = `${url}/schemas/ids/${id}`
      headers['content-type'] = 'application/avro'
      messages.push({ key: item.key, value: await registry.encode(id, item.payload), headers })
    }
    // One send per record keeps the positions in input order.
    const out = []
    for (const message of messages) {
      const [meta] = await producer.send({ topic, acks: -1, messages: [message] })
      out.push({ partition: meta.partition, offset: Number(meta.baseOffset) })
    }
    return out
  } finally {
    await producer.disconnect()
  }
}

async function consume(registry, url, [topic, n]) {
  const count = Number(n)
  const consumer = kafka().consumer({ groupId: `avro-peer-js-${process.pid}-${Date.now()}`, readUncommitted: false })
  await consumer.connect()
  const out = []
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${out.length} of ${count} records of ${topic} within ${DEADLINE_MS} ms`)),
        DEADLINE_MS)
      consumer.run({
        autoCommit: false,
        eachMessage: async ({ message }) => {
          if (out.length >= count) return
          const headers = Object.fromEntries(
            Object.entries(message.headers || {}).map(([k, v]) => [k, Buffer.from(v).toString('utf8')]))
          out.push({
            key: message.key.toString('utf8'),
            headers,
            data: withoutNulls(await registry.decode(message.value)),
          })
          if (out.length >= count) {
            clearTimeout(timer)
            resolve()
          }
        },
      }).catch(reject)
    })
  } finally {
    await consumer.disconnect()
  }
  return out
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function main() {
  const [command, url, ...args] = process.argv.slice(2)
  const arity = { decode: 0, encode: 0, produce: 1, consume: 2 }
  if (!(command in arity) || args.length !== arity[command]) {
    throw new Error('usage: avro_peer.js decode|encode URL, produce URL TOPIC, or consume URL TOPIC N')
  }
  if (command !== 'consume') args.push(await readStdin())
  const registry = new SchemaRegistry({ host: url })
  const result = await ({ decode, encode, produce, consume })[command](registry, url, args)
  process.stdout.write(JSON.stringify(result))
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`)
  process.exit(1)
})
