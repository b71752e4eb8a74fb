use std::fmt;
use std::path::PathBuf;

/// One thing wrong with a topics file, located as precisely as we can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// 1-based line, when the field could be found in the text.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `topics.booking.events.partitions`.
    pub field: String,
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: ", self.file, line)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TopicsError {
    #[error("cannot read {}: {source}\n  hint: run from the repository root or pass --file PATH", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} problem(s) in the topics file:\n{}", .0.len(), render(.0))]
    Invalid(Vec<Problem>),
}

fn render(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("- {p}")).collect::<Vec<_>>().join("\n")
}

impl TopicsError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            TopicsError::Invalid(p) => p,
            TopicsError::Io { .. } => &[],
        }
    }
}
