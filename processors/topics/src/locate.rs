//! Finds the line of a topic's field in the YAML text. serde_yaml reports
//! positions only for syntax and type errors; checks that span several fields
//! (co-partitioning, catalog consistency) need this to point at a line.

pub(crate) struct Lines<'a> {
    lines: Vec<&'a str>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// `name:` with optional quotes.
fn is_key(line: &str, name: &str) -> bool {
    let t = line.trim_start();
    [format!("{name}:"), format!("\"{name}\":"), format!("'{name}':")].iter().any(|k| t.starts_with(k.as_str()))
}

impl<'a> Lines<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lines { lines: text.lines().collect() }
    }

    /// 1-based line of `key:` inside the block that starts at `start` (0-based, exclusive).
    fn find_in_block(&self, start: Option<usize>, key: &str) -> Option<usize> {
        let (from, base) = match start {
            Some(i) => (i + 1, Some(indent(self.lines[i]))),
            None => (0, None),
        };
        for (i, line) in self.lines.iter().enumerate().skip(from) {
            if !is_content(line) {
                continue;
            }
            if let Some(b) = base {
                if indent(line) <= b {
                    return None;
                }
            }
            if is_key(line, key) {
                return Some(i);
            }
        }
        None
    }

    /// Line of `path` (e.g. `["topics", "booking.events", "partitions"]`),
    /// falling back to the deepest ancestor found.
    pub(crate) fn line_of(&self, path: &[&str]) -> Option<usize> {
        let mut at = None;
        for key in path {
            match self.find_in_block(at, key) {
                Some(i) => at = Some(i),
                None => break,
            }
        }
        at.map(|i| i + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_fields_and_falls_back_to_parent() {
        let text = "version: 1\n# comment\ntopics:\n  a.events:\n    partitions: 3\n  b.events:\n    key: x\n    partitions: 4\n";
        let l = Lines::new(text);
        assert_eq!(l.line_of(&["topics", "a.events", "partitions"]), Some(5));
        assert_eq!(l.line_of(&["topics", "b.events", "partitions"]), Some(8));
        assert_eq!(l.line_of(&["topics", "b.events", "owner"]), Some(6), "falls back to the topic");
        assert_eq!(l.line_of(&["topics", "c.events"]), Some(3));
        assert_eq!(l.line_of(&["version"]), Some(1));
    }
}
