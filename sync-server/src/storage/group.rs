//! Group commit: writes that arrive together are committed in one transaction, and
//! each caller returns only once the transaction holding its write has committed.
//!
//! No thread of its own. A caller queues its write, then takes the writer's lock. If
//! the write is already done when it gets the lock (a caller before it took it into
//! its batch), it returns that write's result; otherwise it leads: it takes every write
//! queued (its own among them), commits them together, and hands each its result.
//! While one batch commits, the next gathers: the busier the server, the more each
//! commit (and its fsync) carries, and a lone write waits for no one.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Result, StorageError};

/// Most writes one transaction takes; the rest wait for the next.
pub(crate) const MAX_BATCH: usize = 1024;

/// One queued write's answer: filled by the caller that committed it.
type Slot = Arc<Mutex<Option<Result<()>>>>;

/// Writes waiting for a commit.
pub(crate) struct Group<J> {
    queue: Mutex<Vec<(J, Slot)>>,
}

impl<J> Default for Group<J> {
    fn default() -> Self {
        Group {
            queue: Mutex::new(Vec::new()),
        }
    }
}

impl<J> std::fmt::Debug for Group<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("queued", &lock(&self.queue).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Fills every slot still empty when dropped: a batch cut short (a panic while
/// committing) leaves no caller waiting for an answer that will never come.
struct Answers(Vec<Slot>);

impl Drop for Answers {
    fn drop(&mut self) {
        for s in &self.0 {
            let mut s = lock(s);
            if s.is_none() {
                *s = Some(Err(StorageError::Commit(
                    "the batch holding this write was cut short; nothing of it was committed"
                        .into(),
                )));
            }
        }
    }
}

impl<J> Group<J> {
    /// Writes `job` together with whatever else is queued. `writer` takes the lock
    /// that writes go through; `commit` writes a batch in one transaction and returns
    /// one result per job, in order (all errors if the transaction did not commit).
    pub(crate) fn submit<G>(
        &self,
        job: J,
        writer: impl FnOnce() -> G,
        commit: impl FnOnce(&mut G, &[J]) -> Vec<Result<()>>,
    ) -> Result<()> {
        let mine: Slot = Arc::default();
        lock(&self.queue).push((job, mine.clone()));
        let mut w = writer();
        if let Some(done) = lock(&mine).take() {
            return done;
        }
        let batch: Vec<(J, Slot)> = {
            let mut q = lock(&self.queue);
            let n = q.len().min(MAX_BATCH);
            // Our own job is queued (no one answered it, and answers are given before
            // the writer's lock is let go), but may sit past MAX_BATCH: take it first.
            let at = q.iter().position(|(_, s)| Arc::ptr_eq(s, &mine));
            let mut batch: Vec<(J, Slot)> = Vec::with_capacity(n);
            if let Some(at) = at {
                batch.push(q.remove(at));
            }
            let more = n.saturating_sub(batch.len());
            batch.extend(q.drain(..more));
            batch
        };
        let (jobs, slots): (Vec<J>, Vec<Slot>) = batch.into_iter().unzip();
        let answers = Answers(slots);
        let mut results = commit(&mut w, &jobs).into_iter();
        debug_assert_eq!(results.len(), jobs.len(), "one result per job");
        for slot in &answers.0 {
            // A commit function that answered too few is a bug: the rest are told their
            // write's fate is unknown, never that it was not committed.
            *lock(slot) = Some(results.next().unwrap_or_else(|| {
                Err(StorageError::Commit(
                    "no answer was given for this write: it may or may not be stored".into(),
                ))
            }));
        }
        drop(answers);
        drop(w);
        lock(&mine).take().unwrap_or_else(|| {
            Err(StorageError::Commit(
                "this write was not in the batch its caller committed".into(),
            ))
        })
    }
}

/// The same error for each of `n` grouped writes, whose transaction did not commit.
pub(crate) fn all_failed(n: usize, e: &dyn std::fmt::Display) -> Vec<Result<()>> {
    (0..n)
        .map(|_| Err(StorageError::Commit(e.to_string())))
        .collect()
}

/// One document's received changes, to be stored with its new heads: the job of every
/// backend's grouped appends.
pub(crate) struct Append {
    pub(crate) doc: uuid::Uuid,
    pub(crate) changes: Vec<u8>,
    pub(crate) hashes: Vec<u8>,
    pub(crate) heads: Vec<u8>,
    /// The heads storage must hold for the append to go ahead (the caller's copy was
    /// loaded or last stored at them); none for an append whatever it holds.
    pub(crate) after: Option<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Many threads at once: every job is committed exactly once, each caller gets its
    /// own job's answer, and there are fewer commits than jobs.
    #[test]
    fn concurrent_writes_share_commits_and_get_their_own_answers() {
        let group: Arc<Group<usize>> = Arc::default();
        let writer = Arc::new(Mutex::new(Vec::<usize>::new()));
        let commits = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..64)
            .map(|i| {
                let (group, writer, commits) = (group.clone(), writer.clone(), commits.clone());
                std::thread::spawn(move || {
                    group.submit(
                        i,
                        || lock(&writer),
                        |w, jobs| {
                            commits.fetch_add(1, Ordering::SeqCst);
                            // A slow commit, as an fsync is: others gather meanwhile.
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            jobs.iter()
                                .map(|&j| {
                                    if j % 7 == 3 {
                                        Err(StorageError::NotFound(format!("job {j}")))
                                    } else {
                                        w.push(j);
                                        Ok(())
                                    }
                                })
                                .collect()
                        },
                    )
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        for (i, r) in results.iter().enumerate() {
            match r {
                Err(StorageError::NotFound(what)) => {
                    assert_eq!(i % 7, 3);
                    assert_eq!(what, &format!("job {i}"), "each caller gets its own answer");
                }
                Ok(()) => assert_ne!(i % 7, 3),
                other => panic!("job {i}: {other:?}"),
            }
        }
        let mut written = lock(&writer).clone();
        written.sort_unstable();
        let want: Vec<usize> = (0..64).filter(|j| j % 7 != 3).collect();
        assert_eq!(written, want, "each job written once");
        let n = commits.load(Ordering::SeqCst);
        assert!(n < 64, "{n} commits for 64 jobs: none were grouped");
    }

    /// A commit that panics answers every caller of its batch with an error.
    #[test]
    fn a_batch_cut_short_answers_every_caller() {
        let group: Group<u8> = Group::default();
        let writer = Mutex::new(());
        // Another caller's write, queued before the leader took its batch.
        let other: Slot = Arc::default();
        lock(&group.queue).push((7, other.clone()));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            group.submit(1, || lock(&writer), |_, _| panic!("disk gone"))
        }));
        assert!(r.is_err(), "the panic reaches the leader");
        assert!(
            matches!(lock(&other).take(), Some(Err(StorageError::Commit(_)))),
            "the other caller is told its write was not committed"
        );
        // The next write is unaffected.
        let r = group.submit(
            2,
            || lock(&writer),
            |_, jobs| {
                assert_eq!(jobs, &[2], "nothing left over from the batch cut short");
                vec![Ok(())]
            },
        );
        assert!(r.is_ok());
    }
}
