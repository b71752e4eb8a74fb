// @kafkajs/confluent-schema-registry (avsc) as an interoperability peer for
// our Confluent wire format, through the same Schema Registry.
//
//   node avro_peer.js decode URL   stdin: [{"topic": T, "hex": H}, ...]; prints the
//                                  records the library decodes from those bytes
//                                  (absent optional fields left out), in order
//   node avro_peer.js encode URL   stdin: [{"topic": T, "schema": S, "payload": P}, ...];
//                                  registers S under <T>-<record full name>
//                                  (TopicRecordNameStrategy) and prints the hex of
//                                  what the library encodes for each
//
// NODE_PATH names the node_modules scripts/nodeenv.sh installed. Output is
// one JSON list.
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry')

function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, withoutNulls(v)]))
  }
  return value
}

async function decode(registry, items) {
  const out = []
  for (const item of items) {
    out.push(withoutNulls(await registry.decode(Buffer.from(item.hex, 'hex'))))
  }
  return out
}

async function encode(registry, items) {
  const out = []
  for (const item of items) {
    const parsed = JSON.parse(item.schema)
    const fullName = parsed.namespace ? `${parsed.namespace}.${parsed.name}` : parsed.name
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: item.schema },
      { subject: `${item.topic}-${fullName}` })
    out.push((await registry.encode(id, item.payload)).toString('hex'))
  }
  return out
}

async function main() {
  const [command, url] = process.argv.slice(2)
  const registry = new SchemaRegistry({ host: url })
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const items = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  const result = await ({ decode, encode })[command](registry, items)
  process.stdout.write(JSON.stringify(result))
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`)
  process.exit(1)
})
