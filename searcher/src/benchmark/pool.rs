//! A small pool of worker threads for work that creates more work: a
//! finished search makes the trainings of its architecture ready. Ready work
//! runs by priority (lower first), then in the order it became ready.

use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex};

/// Work the pool can order.
pub(crate) trait Prioritised {
    /// Lower runs first.
    fn priority(&self) -> u8;
}

struct Queued<T> {
    priority: u8,
    order: u64,
    task: T,
}

impl<T> PartialEq for Queued<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.priority, self.order) == (other.priority, other.order)
    }
}
impl<T> Eq for Queued<T> {}
impl<T> PartialOrd for Queued<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Queued<T> {
    // BinaryHeap pops the greatest: the lowest (priority, order) is greatest.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.priority, other.order).cmp(&(self.priority, self.order))
    }
}

struct State<T, E> {
    ready: BinaryHeap<Queued<T>>,
    next_order: u64,
    running: usize,
    error: Option<E>,
}

impl<T: Prioritised, E> State<T, E> {
    fn push(&mut self, task: T) {
        let order = self.next_order;
        self.next_order += 1;
        self.ready.push(Queued {
            priority: task.priority(),
            order,
            task,
        });
    }
}

/// Runs `initial` and everything it leads to on `jobs` threads. `work`
/// returns the tasks a finished task makes ready. The first error stops the
/// hand-out of new work; running work finishes, then the error is returned.
pub(crate) fn run<T, E>(
    jobs: usize,
    initial: Vec<T>,
    work: impl Fn(T) -> Result<Vec<T>, E> + Sync,
) -> Result<(), E>
where
    T: Prioritised + Send,
    E: Send,
{
    let mut state = State {
        ready: BinaryHeap::new(),
        next_order: 0,
        running: 0,
        error: None,
    };
    for t in initial {
        state.push(t);
    }
    let shared = (Mutex::new(state), Condvar::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| worker(&shared, &work));
        }
    });
    let state = shared
        .0
        .into_inner()
        .expect("no worker panicked holding the lock");
    match state.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn worker<T: Prioritised, E>(
    (lock, wake): &(Mutex<State<T, E>>, Condvar),
    work: &(impl Fn(T) -> Result<Vec<T>, E> + Sync),
) {
    let mut state = lock.lock().expect("pool lock");
    loop {
        if state.error.is_some() {
            break;
        }
        if let Some(q) = state.ready.pop() {
            state.running += 1;
            drop(state);
            let outcome = work(q.task);
            state = lock.lock().expect("pool lock");
            state.running -= 1;
            match outcome {
                Ok(more) => {
                    for t in more {
                        state.push(t);
                    }
                }
                Err(e) => {
                    if state.error.is_none() {
                        state.error = Some(e);
                    }
                }
            }
            wake.notify_all();
            continue;
        }
        if state.running == 0 {
            break;
        }
        state = wake.wait(state).expect("pool lock");
    }
    wake.notify_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Task(u8, usize);
    impl Prioritised for Task {
        fn priority(&self) -> u8 {
            self.0
        }
    }

    #[test]
    fn work_that_makes_work_all_runs_once() {
        let done = AtomicUsize::new(0);
        // Each task of depth d < 3 makes two of depth d + 1: 1 + 2 + 4 + 8.
        run(2, vec![Task(0, 0)], |t: Task| -> Result<Vec<Task>, ()> {
            done.fetch_add(1, Ordering::SeqCst);
            Ok(if t.1 < 3 {
                vec![Task(1, t.1 + 1), Task(0, t.1 + 1)]
            } else {
                vec![]
            })
        })
        .unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 15);
    }

    #[test]
    fn one_worker_runs_by_priority_then_order() {
        let seen = Mutex::new(Vec::new());
        let tasks = vec![Task(2, 0), Task(1, 1), Task(2, 2), Task(0, 3)];
        run(1, tasks, |t: Task| -> Result<Vec<Task>, ()> {
            seen.lock().unwrap().push(t.1);
            Ok(vec![])
        })
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![3, 1, 0, 2]);
    }

    #[test]
    fn the_first_error_stops_new_work() {
        let done = AtomicUsize::new(0);
        let tasks = (0..10).map(|i| Task(0, i)).collect();
        let r = run(1, tasks, |t: Task| {
            done.fetch_add(1, Ordering::SeqCst);
            if t.1 == 2 { Err(t.1) } else { Ok(vec![]) }
        });
        assert_eq!(r, Err(2));
        assert_eq!(done.load(Ordering::SeqCst), 3);
    }
}
