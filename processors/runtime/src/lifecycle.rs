//! The life of each task (one partition number of the state, with that
//! partition of every input), as an explicit state with checked
//! transitions, after Kafka Streams' `Task.State`:
//!
//! ```text
//!            assign              restored
//! Closed ──► Created ──► Restoring ──► Running
//!   ▲                      │  ▲           │ revoked, state kept
//!   │       restore failed │  │ moved     ▼
//!   │◄──── (retried: back  │  └──────── Suspended ──► Running (came straight back, unchanged)
//!   │       to Created)    │              │
//!   └──────────────────────┴──────────────┘ lost, or not given back
//! (Created → Closed: revoked before it was taken up.)
//! ```
//!
//! The runner moves every task through these; a move not in the table is a
//! bug in the runner and stops the instance rather than process a partition
//! it does not own or restore one twice.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskState {
    /// Assigned; its committed offsets and state not read yet.
    Created,
    /// Its state is being read from the changelog.
    Restoring,
    /// Its inputs are processed.
    Running,
    /// Revoked with its committed state kept aside, in case it comes straight back.
    Suspended,
    /// Not owned.
    Closed,
}

impl TaskState {
    fn may_become(self, to: TaskState) -> bool {
        use TaskState::*;
        matches!(
            (self, to),
            (Closed, Created)
                | (Created, Restoring)
                | (Created, Closed)
                | (Restoring, Running)
                | (Restoring, Created)
                | (Restoring, Closed)
                | (Running, Suspended)
                | (Running, Closed)
                | (Suspended, Running)
                | (Suspended, Restoring)
                | (Suspended, Closed)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// A runner bug: stop the instance.
    #[error("task {partition}: {from:?} → {to:?} is not a transition of the task lifecycle (a runtime bug)")]
    Illegal { partition: i32, from: TaskState, to: TaskState },
}

/// Every task this instance knows; a partition not in the map is `Closed`.
#[derive(Debug, Default)]
pub struct Tasks {
    states: BTreeMap<i32, TaskState>,
}

impl Tasks {
    pub fn state(&self, partition: i32) -> TaskState {
        self.states.get(&partition).copied().unwrap_or(TaskState::Closed)
    }

    pub fn transition(&mut self, partition: i32, to: TaskState) -> Result<(), LifecycleError> {
        let from = self.state(partition);
        if !from.may_become(to) {
            return Err(LifecycleError::Illegal { partition, from, to });
        }
        match to {
            TaskState::Closed => self.states.remove(&partition),
            _ => self.states.insert(partition, to),
        };
        Ok(())
    }

    /// The tasks in `state`, in partition order.
    pub fn in_state(&self, state: TaskState) -> Vec<i32> {
        self.states.iter().filter(|(_, s)| **s == state).map(|(p, _)| *p).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::TaskState::*;
    use super::*;

    const ALL: [TaskState; 5] = [Created, Restoring, Running, Suspended, Closed];

    #[test]
    fn exactly_the_drawn_transitions_are_allowed() {
        let allowed: Vec<(TaskState, TaskState)> =
            ALL.iter().flat_map(|a| ALL.iter().map(move |b| (*a, *b))).filter(|(a, b)| a.may_become(*b)).collect();
        assert_eq!(
            allowed,
            vec![
                (Created, Restoring),
                (Created, Closed),
                (Restoring, Created),
                (Restoring, Running),
                (Restoring, Closed),
                (Running, Suspended),
                (Running, Closed),
                (Suspended, Restoring),
                (Suspended, Running),
                (Suspended, Closed),
                (Closed, Created),
            ]
        );
    }

    #[test]
    fn a_task_goes_round_and_an_illegal_move_is_refused_and_changes_nothing() {
        let mut t = Tasks::default();
        assert_eq!(t.state(3), Closed);
        for to in [Created, Restoring, Running, Suspended, Running, Closed, Created] {
            t.transition(3, to).unwrap();
        }
        assert_eq!(t.transition(3, Running), Err(LifecycleError::Illegal { partition: 3, from: Created, to: Running }));
        assert_eq!(t.state(3), Created);
        t.transition(3, Restoring).unwrap();
        t.transition(4, Created).unwrap();
        assert_eq!((t.in_state(Restoring), t.in_state(Created)), (vec![3], vec![4]));
        t.transition(3, Closed).unwrap();
        assert_eq!(t.in_state(Restoring), Vec::<i32>::new());
        assert_eq!(
            t.transition(9, Suspended),
            Err(LifecycleError::Illegal { partition: 9, from: Closed, to: Suspended })
        );
    }
}
