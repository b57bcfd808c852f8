//! The time budget of one message's parse and classification: the last line of defence
//! behind [`crate::message::Limits`]. The pre-scan refuses the structures known to make
//! mail-parser slow, but a mailbox must not stop for one that nobody has found yet: a message
//! whose work runs over the budget is given up on (and quarantined by the caller) while the
//! rest of its batch goes on.
//!
//! A thread cannot be stopped from outside, so the work runs on threads of its own that the
//! caller can walk away from: a worker stuck on a message is left to finish it alone (its
//! result is then dropped) and a fresh worker takes over the messages after it. Parsing is
//! bounded by the size limit and the pre-scan, so a worker left behind ends on its own.
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A message whose work ran longer than the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub budget: Duration,
}

enum Event<T> {
    Started {
        worker: usize,
        index: usize,
        at: Instant,
    },
    Done {
        worker: usize,
        index: usize,
        result: T,
    },
}

/// What one worker holds: its messages (by their index in the batch) and the one it is on.
struct Worker {
    pending: Vec<usize>,
    current: Option<(usize, Instant)>,
}

/// Runs `work` on every input on up to `threads` threads at once, in the inputs' order per
/// thread, and returns the results in the inputs' order. An input whose work has not ended
/// `budget` after it began comes back as [`OverBudget`]; the inputs after it are handed to a
/// new thread.
pub fn run_all<T, F>(
    inputs: Vec<Vec<u8>>,
    threads: usize,
    budget: Duration,
    work: Arc<F>,
) -> Vec<Result<T, OverBudget>>
where
    T: Send + 'static,
    F: Fn(&[u8]) -> T + Send + Sync + 'static,
{
    let n = inputs.len();
    let inputs: Arc<[Vec<u8>]> = inputs.into();
    let mut results: Vec<Option<Result<T, OverBudget>>> = (0..n).map(|_| None).collect();
    let (tx, rx) = mpsc::channel::<Event<T>>();
    let per_thread = n.div_ceil(threads.max(1)).max(1);
    let mut workers: Vec<Option<Worker>> = Vec::new();
    let spawn = |workers: &mut Vec<Option<Worker>>, pending: Vec<usize>| {
        let id = workers.len();
        let (tx, inputs, work, mine) = (tx.clone(), inputs.clone(), work.clone(), pending.clone());
        std::thread::spawn(move || {
            for index in mine {
                let started = Event::Started {
                    worker: id,
                    index,
                    at: Instant::now(),
                };
                // A send fails only once the caller has stopped listening: nothing to do.
                if tx.send(started).is_err() {
                    return;
                }
                let result = work(&inputs[index]);
                if tx
                    .send(Event::Done {
                        worker: id,
                        index,
                        result,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        workers.push(Some(Worker {
            pending,
            current: None,
        }));
    };
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(per_thread) {
        spawn(&mut workers, chunk.to_vec());
    }
    let mut open = n;
    while open > 0 {
        let deadline = workers
            .iter()
            .flatten()
            .filter_map(|w| w.current.map(|(_, at)| at + budget))
            .min();
        let event = match deadline {
            Some(d) => rx.recv_timeout(d.saturating_duration_since(Instant::now())),
            // Every live worker is between two messages: its next event comes soon.
            None => rx.recv_timeout(budget),
        };
        match event {
            Ok(Event::Started { worker, index, at }) => {
                if let Some(Some(w)) = workers.get_mut(worker) {
                    w.current = Some((index, at));
                }
            }
            Ok(Event::Done {
                worker,
                index,
                result,
            }) => {
                if let Some(Some(w)) = workers.get_mut(worker) {
                    w.current = None;
                    w.pending.retain(|&i| i != index);
                    results[index] = Some(Ok(result));
                    open -= 1;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                for id in 0..workers.len() {
                    let Some(Some(w)) = workers.get(id) else {
                        continue;
                    };
                    let Some((index, at)) = w.current else {
                        continue;
                    };
                    if now < at + budget {
                        continue;
                    }
                    let rest: Vec<usize> =
                        w.pending.iter().copied().filter(|&i| i != index).collect();
                    results[index] = Some(Err(OverBudget { budget }));
                    open -= 1;
                    workers[id] = None;
                    tracing::warn!(
                        index,
                        budget_ms = budget.as_millis() as u64,
                        "message over its time budget; its worker is left behind"
                    );
                    if !rest.is_empty() {
                        spawn(&mut workers, rest);
                    }
                }
            }
            // Every sender is gone, yet results are missing: a worker died outside `work`.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(OverBudget { budget })))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stuck message never finishes here: the call returning at all shows that the batch
    /// went on without it.
    #[test]
    fn a_stuck_message_is_given_up_and_the_rest_is_done_in_order() {
        let inputs: Vec<Vec<u8>> = ["a", "b", "stuck", "c", "d", "e", "f"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let work = Arc::new(|raw: &[u8]| {
            if raw == b"stuck" {
                loop {
                    std::thread::park();
                }
            }
            String::from_utf8_lossy(raw).to_uppercase()
        });
        let out = run_all(inputs, 2, Duration::from_millis(200), work);
        let budget = Duration::from_millis(200);
        assert_eq!(
            out,
            vec![
                Ok("A".to_string()),
                Ok("B".into()),
                Err(OverBudget { budget }),
                Ok("C".into()),
                Ok("D".into()),
                Ok("E".into()),
                Ok("F".into()),
            ]
        );
    }

    #[test]
    fn without_a_stuck_message_every_result_comes_back_in_order() {
        let inputs: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i]).collect();
        let out = run_all(
            inputs,
            3,
            Duration::from_secs(60),
            Arc::new(|raw: &[u8]| raw[0]),
        );
        assert_eq!(out, (0..100u8).map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn two_stuck_messages_of_one_worker_are_both_given_up() {
        let inputs: Vec<Vec<u8>> = ["stuck", "stuck", "x"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        let work = Arc::new(|raw: &[u8]| {
            if raw == b"stuck" {
                loop {
                    std::thread::park();
                }
            }
            raw.len()
        });
        let budget = Duration::from_millis(100);
        let out = run_all(inputs, 1, budget, work);
        assert_eq!(
            out,
            vec![
                Err(OverBudget { budget }),
                Err(OverBudget { budget }),
                Ok(1)
            ]
        );
    }
}
