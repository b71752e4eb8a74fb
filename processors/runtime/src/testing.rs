//! Helpers for processors' unit tests, which run without Kafka.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::processor::TimerCommand;

/// Applies a step's timer commands to a test's view of the key's timers,
/// as the engine does to the key's entry.
pub fn apply_timers(timers: &mut BTreeMap<String, DateTime<Utc>>, commands: Vec<TimerCommand>) {
    for t in commands {
        match t {
            TimerCommand::Set { name, due } => {
                timers.insert(name, due);
            }
            TimerCommand::Cancel { name } => {
                timers.remove(&name);
            }
        }
    }
}

/// A processor and the participants around it, at one point of a run.
pub trait World: Clone {
    /// What can happen next (a topic delivering its next record, a timer
    /// coming due, a redelivery), as opaque choices; none when the run is over.
    fn choices(&self) -> Vec<usize>;
    /// Makes one choice happen and names it for the failure message.
    fn step(&mut self, choice: usize) -> String;
    /// Asserts the outcome of a finished run; `path` names its steps.
    fn check(&self, path: &[String]);
}

/// Depth-first over every order in which the choices can happen; checks
/// every finished run and returns how many there were.
pub fn explore<W: World>(world: W) -> usize {
    fn go<W: World>(world: W, path: &mut Vec<String>, paths: &mut usize) {
        let choices = world.choices();
        if choices.is_empty() {
            world.check(path);
            *paths += 1;
            return;
        }
        for choice in choices {
            let mut next = world.clone();
            path.push(next.step(choice));
            go(next, path, paths);
            path.pop();
        }
    }
    let mut paths = 0;
    go(world, &mut Vec::new(), &mut paths);
    paths
}
