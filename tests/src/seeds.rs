//! The example events of the seed catalogs (`../shared/seeds/`), in their
//! platforms' own envelopes, read from the documents themselves:
//! First Viscount's (004) are whole envelopes already; Go4u's (000) are
//! payloads, wrapped in its common envelope; KorrectNG's (001) are
//! TypeScript shapes, given values here (personal fields get the raw
//! values [`RAW_PII`] lists, which no output may contain).

use std::path::PathBuf;

use serde_json::{json, Map, Value};

/// One example: the raw topic it is published on and its record value.
#[derive(Debug, Clone)]
pub struct Example {
    pub platform: &'static str,
    pub native_type: String,
    pub topic: String,
    pub value: Value,
}

/// Personal values put into the examples: none may appear in any output.
pub const RAW_PII: &[&str] = &["chiamaka.okonkwo@korrect.example", "Chiamaka", "Okonkwo", "203.0.113."];

pub fn seeds_dir() -> PathBuf {
    let dir = std::env::var("SAGASTREAM_SEEDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| crate::repo_root().join("../shared/seeds"));
    assert!(
        dir.is_dir(),
        "the seed catalogs are not at {} (set SAGASTREAM_SEEDS_DIR to the directory with 000_*.txt ... 004_*.txt)",
        dir.display()
    );
    dir
}

fn seed(prefix: &str) -> String {
    let dir = seeds_dir();
    let entry = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .unwrap_or_else(|| panic!("no seed {prefix}_*.txt in {}", dir.display()));
    std::fs::read_to_string(entry.path()).unwrap()
}

/// The JSON object that starts at line `start` (a line that is `{`), to its closing brace.
fn object_at(lines: &[&str], start: usize) -> String {
    let mut depth = 0i32;
    let mut text = String::new();
    for line in &lines[start..] {
        text.push_str(line);
        text.push('\n');
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
        if depth == 0 {
            break;
        }
    }
    text
}

/// First Viscount's per-type topic, `{service}.{domain}.{action}.v1`.
pub fn first_viscount_topic(event_type: &str) -> String {
    let dotted = match event_type {
        "InventoryReserved" => "inventory.reserved",
        "InventoryReleased" => "inventory.released",
        "InventoryAdjusted" => "inventory.adjusted",
        "LowStockAlert" => "inventory.low_stock",
        "InventoryUpdated" => "inventory.updated",
        other => other,
    };
    let service = match dotted.split('.').next().unwrap() {
        "product" => "product-catalog",
        "inventory" => "inventory-management",
        "order" => "order-management",
        other => panic!("no First Viscount service for {other}"),
    };
    format!("{service}.{dotted}.v1")
}

/// Seed 004's fenced JSON envelopes (the generic structure, with its
/// comment in place of a payload, is no example and is skipped).
pub fn first_viscount() -> Vec<Example> {
    let text = seed("004");
    let mut out = Vec::new();
    for block in text.split("```json").skip(1) {
        let body = block.split("```").next().unwrap();
        if body.contains("/*") {
            continue;
        }
        let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("seed 004 example: {e}\n{body}"));
        let native_type = value["event_type"].as_str().expect("an event_type").to_owned();
        out.push(Example { platform: "first_viscount", topic: first_viscount_topic(&native_type), native_type, value });
    }
    out
}

/// Seed 000's payloads under their `N.N type` headings, each wrapped in the
/// common envelope with an id, time, producer, trace, sequence and an IP.
pub fn go4u() -> Vec<Example> {
    let text = seed("000");
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let heading = lines[i].split_once(' ').filter(|(n, name)| {
            n.split('.').count() == 2 && n.split('.').all(|p| p.parse::<u32>().is_ok()) && name.contains('.')
        });
        let Some((_, name)) = heading else {
            i += 1;
            continue;
        };
        let mut producer = "go4u-service".to_owned();
        let mut j = i + 1;
        while j < lines.len() && lines[j].trim() != "{" {
            if let Some(p) = lines[j].strip_prefix("Producer: ") {
                producer = p.split([' ', '/']).next().unwrap().to_owned();
            }
            j += 1;
        }
        let body = object_at(&lines, j);
        let mut payload: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("seed 000 {name}: {e}\n{body}"));
        one_of_each_choice(&mut payload);
        let n = out.len() + 1;
        let value = json!({
            "event_id": format!("01JGQW{n:020}"),
            "event_name": name,
            "event_version": 1,
            "occurred_at": format!("2025-09-25T10:{:02}:00Z", n % 60),
            "producer": producer,
            "payload": payload,
            "metadata": {"trace_id": "a3f2", "sequence": n, "ip": format!("203.0.113.{n}"), "locale": "en", "actor_user_id": "usr_123"},
        });
        out.push(Example { platform: "go4u", native_type: name.to_owned(), topic: "go4u.events".into(), value });
        i = j + 1;
    }
    out
}

/// Seed 000 writes an enumeration as its choices (`"requester|agent|admin"`);
/// an event has one value: the first.
fn one_of_each_choice(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('|') && !s.contains(' ') => {
            *s = s.split('|').next().unwrap().to_owned();
        }
        Value::Array(items) => items.iter_mut().for_each(one_of_each_choice),
        Value::Object(map) => map.values_mut().for_each(one_of_each_choice),
        _ => {}
    }
}

/// A value for a TypeScript field of seed 001.
fn ts_value(field: &str, ty: &str) -> Value {
    let ty = ty.trim();
    if let Some(first) = ty.split('|').next().filter(|_| ty.contains('\'')) {
        return Value::String(first.trim().trim_matches('\'').to_owned());
    }
    match (field, ty) {
        (f, "string") if f.to_lowercase().contains("email") => "chiamaka.okonkwo@korrect.example".into(),
        ("firstName", _) => "Chiamaka".into(),
        ("lastName", _) => "Okonkwo".into(),
        // A decision the mapping knows, so the split is exercised.
        ("decision", _) => "split".into(),
        (f, "string") => Value::String(format!("{f}_1")),
        (_, "number") => json!(1500),
        (_, "string[]") => json!(["status"]),
        (_, t) if t.starts_with("Record<") => json!({}),
        (f, t) => panic!("seed 001: no value for {f}: {t}"),
    }
}

/// Seed 001's payload shapes under their `#### \`type\`` headings, with values.
pub fn korrectng() -> Vec<Example> {
    let text = seed("001");
    let mut out = Vec::new();
    for section in text.split("#### `").skip(1) {
        let name = section.split('`').next().unwrap().to_owned();
        let producer = section
            .lines()
            .find_map(|l| l.strip_prefix("**Producer**: "))
            .unwrap_or("Various Services")
            .to_lowercase()
            .replace(' ', "-");
        let shape = section.split("```typescript").nth(1).and_then(|s| s.split("```").next()).expect("a payload shape");
        let mut payload = Map::new();
        for line in shape.lines().map(|l| l.split("//").next().unwrap().trim()) {
            let Some((field, ty)) = line.strip_suffix(';').and_then(|l| l.split_once(':')) else { continue };
            let field = field.trim().trim_end_matches('?');
            payload.insert(field.to_owned(), ts_value(field, ty));
        }
        let n = out.len() + 1;
        let value = json!({
            "id": format!("7d4f3c2a-0b1e-4c5d-9e8f-{n:012}"),
            "type": name,
            "payload": payload,
            "timestamp": format!("2025-10-01T09:{:02}:00.000Z", n % 60),
            "source": producer,
            "correlationId": format!("c0ffee00-0000-4000-8000-{n:012}"),
        });
        out.push(Example { platform: "korrectng", native_type: name, topic: "korrectng.events".into(), value });
    }
    out
}

/// Every example of seeds 000, 001 and 004.
pub fn all() -> Vec<Example> {
    let mut all = first_viscount();
    all.extend(go4u());
    all.extend(korrectng());
    all
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_seed_example_is_read() {
        assert_eq!(super::first_viscount().len(), 15);
        assert_eq!(super::go4u().len(), 34);
        assert_eq!(super::korrectng().len(), 21);
    }
}
