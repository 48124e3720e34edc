//! One target of a send: the sending side of the protocol that `remote.py`
//! describes.
//!
//! Four parts run at once on the thread that polls the send, so neither
//! side ever waits on the other with both flow-control windows full:
//! - `send_tree` passes on the entries the walk streams to this target;
//! - `receive` takes every reply as it comes and checks it (a reply about a
//!   file the far side may not name is a protocol error, so what it can make
//!   us hold is bounded by the size of our own tree);
//! - `dispatch` turns replies into work and progress events;
//! - `serve` sends the contents of the files asked for, a chunk at a time.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use async_channel::{Receiver, Sender};
use blocking::unblock;
use futures_lite::future::try_zip;
use futures_util::future::{select, Either};
use sha2::{Digest as _, Sha256};

use super::error::Cause;
use super::protocol::{tagged, Checker, Digest, RemoteStats, Reply};
use super::walk::{FileInfo, Tree};
use super::{Event, FinishedFn, HookError, Hooks, TargetError, TargetReport};
use crate::{Channel, Error, Gateway, Value};

/// File contents travel in chunks of this size; small files travel
/// together in messages of about this size.
const CHUNK: usize = 1 << 20;
/// Files prepared (hashed, opened, first chunk read) per trip to the
/// thread pool, at most. Two batches may be in hand at once: one being
/// sent, the next being read.
const PREPARE_FILES: usize = 256;
/// Bytes read ahead per trip to the thread pool, at most (plus one chunk).
const PREPARE_BYTES: u64 = 4 << 20;

/// A target whose receiving end runs and waits for the tree.
pub(crate) struct Target {
    pub gateway: Gateway,
    pub channel: Channel,
    pub dest: PathBuf,
    pub finished: Option<Box<FinishedFn>>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("gateway", &self.gateway.id())
            .field("dest", &self.dest)
            .field("on_finished", &self.finished.is_some())
            .finish()
    }
}

/// How a target ended.
pub(crate) struct Outcome {
    pub result: Result<TargetReport, TargetError>,
    /// Source files that could not be read for this target.
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// Why a part of a target stopped.
enum Failure {
    Hook(HookError),
    Channel(Error),
    Protocol(String),
}

/// What `serve` did.
#[derive(Default)]
struct Served {
    files: u64,
    bytes: u64,
    unreadable: Vec<(PathBuf, io::Error)>,
}

/// What the parts of one target share.
struct Ctx<'a, 'h> {
    gateway: &'a Gateway,
    channel: &'a Channel,
    tree: &'a Tree,
    source: &'a Path,
    hooks: &'a Mutex<&'h mut Hooks>,
    /// Bytes sent per file until its ack (for `Event::Ack`).
    sizes: Mutex<HashMap<usize, u64>>,
}

impl Ctx<'_, '_> {
    /// File `index`; the checker lets only known numbers through.
    fn file(&self, index: usize) -> Result<FileInfo, Failure> {
        self.tree
            .file(index)
            .ok_or_else(|| Failure::Protocol(format!("no file {index}")))
    }

    fn event(&self, event: Event<'_>) -> Result<(), Failure> {
        let mut hooks = self.hooks.lock().unwrap_or_else(PoisonError::into_inner);
        hooks.event(event).map_err(Failure::Hook)
    }

    fn ack(&self, index: usize) -> Result<(), Failure> {
        let bytes = self
            .sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&index)
            .unwrap_or(0);
        self.event(Event::Ack {
            channel: self.channel,
            path: &self.file(index)?.rel,
            bytes,
        })
    }

    fn set_size(&self, index: usize, bytes: u64) {
        self.sizes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(index, bytes);
    }

    async fn send(&self, item: Value) -> Result<(), Failure> {
        // `send_value`: the item is a Value already, no copy of its bytes.
        self.channel
            .send_value(item)
            .await
            .map_err(Failure::Channel)
    }
}

/// Sync one target. `Err` only for a hook's error (which stops the whole
/// send); a failing target is an `Outcome` with an error.
pub(crate) async fn run(
    target: Target,
    entries: Receiver<Value>,
    tree: &Tree,
    source: &Path,
    hooks: &Mutex<&mut Hooks>,
) -> Result<Outcome, HookError> {
    let Target {
        gateway,
        channel,
        dest,
        finished,
    } = target;
    let ctx = Ctx {
        gateway: &gateway,
        channel: &channel,
        tree,
        source,
        hooks,
        sizes: Mutex::new(HashMap::new()),
    };
    let (reply_tx, reply_rx) = async_channel::unbounded();
    let (todo_tx, todo_rx) = async_channel::unbounded::<Job>();
    // Owned (boxed), so that `select` drops the one that finished: a
    // failed `work` lets go of this target's entries at once, and the
    // walk does not wait for it.
    let receiver = Box::pin(receive(&ctx, reply_tx));
    let work = Box::pin(try_zip(
        send_tree(&ctx, entries),
        try_zip(dispatch(&ctx, reply_rx, todo_tx), serve(&ctx, todo_rx)),
    ));
    let failed = |cause: Cause| Outcome {
        result: Err(TargetError::with_cause(&gateway, &dest, cause)),
        unreadable: Vec::new(),
    };
    let ((), (stats, served)) = match select(work, receiver).await {
        Either::Left((Ok(done), receiver)) => match receiver.await {
            Ok(()) => done,
            Err(failure) => return settle(failure, &channel).await.map(failed),
        },
        Either::Left((Err(failure), receiver)) => {
            let cause = settle(failure, &channel).await?;
            // The receiver ends now that our end is closed; it may know
            // better why (the far side's traceback, a lost connection).
            return Ok(failed(match (cause, receiver.await) {
                (Cause::Gateway(_), Err(Failure::Channel(better))) => Cause::Gateway(better),
                (cause, _) => cause,
            }));
        }
        Either::Right((Ok(()), work)) => match work.await {
            Ok(done) => done,
            Err(failure) => return settle(failure, &channel).await.map(failed),
        },
        Either::Right((Err(failure), _work)) => return settle(failure, &channel).await.map(failed),
    };
    if let Some(finished) = finished {
        finished()?;
    }
    Ok(Outcome {
        result: Ok(TargetReport {
            gateway: gateway.id().to_string(),
            dest_dir: dest,
            files_sent: served.files,
            bytes_sent: served.bytes,
            files_same: stats.same,
            dirs_created: stats.dirs,
            links_made: stats.links,
            deleted: stats.deleted,
        }),
        unreadable: served.unreadable,
    })
}

/// The cause of a failure, after closing our end so that the far side
/// stops; a hook's error is handed up as it is.
async fn settle(failure: Failure, channel: &Channel) -> Result<Cause, HookError> {
    match failure {
        Failure::Hook(e) => Err(e),
        Failure::Channel(e) => {
            // Already closed or lost, most likely; then there is nothing to do.
            let _ = channel.close().await;
            Ok(Cause::Gateway(e))
        }
        Failure::Protocol(message) => {
            let _ = channel.close_with_error(&message).await;
            Ok(Cause::Protocol(message))
        }
    }
}

/// Pass on the batches of entries the walk sends us, then `("end",)`.
async fn send_tree(ctx: &Ctx<'_, '_>, entries: Receiver<Value>) -> Result<(), Failure> {
    while let Ok(batch) = entries.recv().await {
        ctx.send(tagged("tree", vec![batch])).await?;
    }
    ctx.send(tagged("end", Vec::new())).await
}

/// Take the replies as they come, check them, and queue them for
/// `dispatch`. Ends with the channel: `Ok` at its normal end.
async fn receive(ctx: &Ctx<'_, '_>, replies: Sender<Reply>) -> Result<(), Failure> {
    let mut check = Checker::default();
    loop {
        let value: Value = match ctx.channel.receive().await {
            Ok(value) => value,
            Err(Error::Closed) => return Ok(()),
            Err(e) => return Err(Failure::Channel(e)),
        };
        let reply = check
            .reply(value, ctx.tree.len())
            .map_err(Failure::Protocol)?;
        if replies.send(reply).await.is_err() {
            // `dispatch` has stopped; what it says wins.
            return Ok(());
        }
    }
}

/// Turn replies into work for `serve` and events; ends at `done`.
async fn dispatch(
    ctx: &Ctx<'_, '_>,
    replies: Receiver<Reply>,
    todo: Sender<Job>,
) -> Result<RemoteStats, Failure> {
    let mut files = 0u64;
    let mut bytes = 0u64;
    // Acks that come before `compared` wait for the List event.
    let mut held: Option<Vec<usize>> = Some(Vec::new());
    while let Ok(reply) = replies.recv().await {
        match reply {
            Reply::Want(wants) => {
                for (index, digest) in wants {
                    files += 1;
                    bytes += ctx.file(index)?.size;
                    // Fails only when `serve` stopped, which then says why.
                    let _ = todo.send((index, digest)).await;
                }
            }
            Reply::Compared => {
                ctx.event(Event::List {
                    channel: ctx.channel,
                    files,
                    bytes,
                })?;
                for index in held.take().unwrap_or_default() {
                    ctx.ack(index)?;
                }
            }
            Reply::Ack(indices) => match &mut held {
                Some(held) => held.extend(indices),
                None => {
                    for index in indices {
                        ctx.ack(index)?;
                    }
                }
            },
            Reply::Done(stats) => {
                drop(todo);
                return Ok(stats);
            }
        }
    }
    Err(Failure::Protocol(
        "the receiving end stopped before it was done".to_string(),
    ))
}

/// A file asked for, with what the far side has of it.
type Job = (usize, Option<Digest>);

/// A file made ready on the thread pool.
enum Prepared {
    /// The checksums match.
    Same,
    /// It cannot be read.
    Gone(io::Error),
    /// All of it (it is smaller than a chunk).
    Whole(Vec<u8>),
    /// Its first chunk; the rest is still in the file.
    Start(File, Vec<u8>),
}

/// Send what was asked for. Files are made ready in batches on the thread
/// pool (checksum, open, first chunk); small files then travel together,
/// large ones a chunk at a time.
async fn serve(ctx: &Ctx<'_, '_>, todo: Receiver<Job>) -> Result<Served, Failure> {
    let mut served = Served::default();
    let mut carry = None;
    // The next batch, already being made ready while this one is sent.
    let mut next: Option<(Vec<Job>, blocking::Task<Vec<Prepared>>)> = None;
    loop {
        let (jobs, preparing) = match next.take() {
            Some(next) => next,
            None => {
                let first = match carry.take() {
                    Some(job) => job,
                    None => match todo.recv().await {
                        Ok(job) => job,
                        Err(_) => return Ok(served),
                    },
                };
                start_batch(ctx, first, &todo, &mut carry)?
            }
        };
        let prepared = preparing.await;
        // Start on what waits now, so that reading overlaps sending.
        let first = carry.take().or_else(|| todo.try_recv().ok());
        if let Some(first) = first {
            next = Some(start_batch(ctx, first, &todo, &mut carry)?);
        }
        let mut batch = Batch::default();
        for ((index, _), prepared) in jobs.into_iter().zip(prepared) {
            let info = ctx.file(index)?;
            match prepared {
                Prepared::Same => {
                    ctx.set_size(index, info.size);
                    batch.same.push(Value::from(index));
                }
                Prepared::Gone(error) => {
                    if error.kind() != io::ErrorKind::NotFound {
                        served.unreadable.push((ctx.source.join(&info.rel), error));
                    }
                    ctx.set_size(index, 0);
                    batch.gone.push(Value::from(index));
                }
                Prepared::Whole(data) => {
                    report_send_file(ctx, index)?;
                    let n = data.len() as u64;
                    ctx.set_size(index, n);
                    if batch.bytes + n > CHUNK as u64 {
                        batch.flush(ctx, &mut served).await?;
                    }
                    batch.bytes += n;
                    batch.sent.push((index, n));
                    batch
                        .files
                        .push(Value::Tuple(vec![Value::from(index), Value::Bytes(data)]));
                }
                Prepared::Start(file, chunk) => {
                    batch.flush(ctx, &mut served).await?;
                    report_send_file(ctx, index)?;
                    stream(ctx, index, file, chunk, &mut served).await?;
                }
            }
        }
        batch.flush(ctx, &mut served).await?;
    }
}

/// Take `first` and what else waits in `todo` (within the batch's budget;
/// one that does not fit goes to `carry`) and start making them ready on
/// the thread pool.
fn start_batch(
    ctx: &Ctx<'_, '_>,
    first: Job,
    todo: &Receiver<Job>,
    carry: &mut Option<Job>,
) -> Result<(Vec<Job>, blocking::Task<Vec<Prepared>>), Failure> {
    let mut budget = ctx.file(first.0)?.size.min(CHUNK as u64);
    let mut jobs = vec![first];
    while jobs.len() < PREPARE_FILES && budget < PREPARE_BYTES {
        let Ok(job) = todo.try_recv() else { break };
        budget += ctx.file(job.0)?.size.min(CHUNK as u64);
        if budget > PREPARE_BYTES {
            *carry = Some(job);
            break;
        }
        jobs.push(job);
    }
    let mut work = Vec::with_capacity(jobs.len());
    for &(index, digest) in &jobs {
        let info = ctx.file(index)?;
        work.push((ctx.source.join(&info.rel), info.size, digest));
    }
    let preparing = unblock(move || {
        work.into_iter()
            .map(|(path, size, digest)| prepare(&path, size, digest))
            .collect::<Vec<_>>()
    });
    Ok((jobs, preparing))
}

fn report_send_file(ctx: &Ctx<'_, '_>, index: usize) -> Result<(), Failure> {
    let mut hooks = ctx.hooks.lock().unwrap_or_else(PoisonError::into_inner);
    hooks
        .report_send_file(ctx.gateway, &ctx.file(index)?.rel)
        .map_err(Failure::Hook)
}

/// Small files, checksum matches and unreadable files on their way out.
#[derive(Default)]
struct Batch {
    files: Vec<Value>,
    bytes: u64,
    /// (file, bytes) of `files`, for the `Sent` events.
    sent: Vec<(usize, u64)>,
    same: Vec<Value>,
    gone: Vec<Value>,
}

impl Batch {
    async fn flush(&mut self, ctx: &Ctx<'_, '_>, served: &mut Served) -> Result<(), Failure> {
        if !self.files.is_empty() {
            let files = std::mem::take(&mut self.files);
            ctx.send(tagged("files", vec![Value::List(files)])).await?;
            self.bytes = 0;
            for (index, bytes) in self.sent.drain(..) {
                served.files += 1;
                served.bytes += bytes;
                ctx.event(Event::Sent {
                    channel: ctx.channel,
                    path: &ctx.file(index)?.rel,
                    bytes,
                })?;
            }
        }
        for (tag, list) in [("same", &mut self.same), ("gone", &mut self.gone)] {
            if !list.is_empty() {
                let list = std::mem::take(list);
                ctx.send(tagged(tag, vec![Value::List(list)])).await?;
            }
        }
        Ok(())
    }
}

/// Make file `path` ready: compare checksums if the far side sent one,
/// else open it and read its first chunk.
fn prepare(path: &Path, size: u64, digest: Option<Digest>) -> Prepared {
    if let Some(theirs) = digest {
        match sha256_file(path) {
            Ok(ours) if ours == theirs => return Prepared::Same,
            Ok(_) => {}
            Err(error) => return Prepared::Gone(error),
        }
    }
    let opened = File::open(path).and_then(|mut file| {
        let chunk = read_chunk(&mut file, size)?;
        Ok((file, chunk))
    });
    match opened {
        Ok((_, chunk)) if chunk.len() < CHUNK => Prepared::Whole(chunk),
        Ok((file, chunk)) => Prepared::Start(file, chunk),
        Err(error) => Prepared::Gone(error),
    }
}

/// Send a large file a chunk at a time, its first chunk in hand.
async fn stream(
    ctx: &Ctx<'_, '_>,
    index: usize,
    mut file: File,
    mut chunk: Vec<u8>,
    served: &mut Served,
) -> Result<(), Failure> {
    let info = ctx.file(index)?;
    let path = &info.rel;
    let mut sent = 0u64;
    loop {
        let n = chunk.len() as u64;
        let last = chunk.len() < CHUNK;
        let item = if last {
            ctx.set_size(index, sent + n);
            let file = Value::Tuple(vec![Value::from(index), Value::Bytes(chunk)]);
            tagged("files", vec![Value::List(vec![file])])
        } else {
            tagged("part", vec![Value::from(index), Value::Bytes(chunk)])
        };
        ctx.send(item).await?;
        sent += n;
        ctx.event(Event::Sent {
            channel: ctx.channel,
            path,
            bytes: n,
        })?;
        if last {
            served.files += 1;
            served.bytes += sent;
            return Ok(());
        }
        let (returned, next) = unblock(move || {
            let next = read_chunk(&mut file, CHUNK as u64);
            (file, next)
        })
        .await;
        file = returned;
        match next {
            Ok(next) => chunk = next,
            Err(error) => {
                // The far side drops what it has of this file.
                served.unreadable.push((ctx.source.join(path), error));
                ctx.set_size(index, 0);
                let gone = Value::List(vec![Value::from(index)]);
                return ctx.send(tagged("gone", vec![gone])).await;
            }
        }
    }
}

/// Up to `CHUNK` bytes from `file`; fewer only at its end.
fn read_chunk(file: &mut File, size_hint: u64) -> io::Result<Vec<u8>> {
    // One byte more than expected, so a file of the expected size needs no
    // second allocation to see its end.
    let capacity = usize::try_from(size_hint.saturating_add(1)).map_or(CHUNK, |n| n.min(CHUNK));
    let mut chunk = Vec::with_capacity(capacity);
    file.take(CHUNK as u64).read_to_end(&mut chunk)?;
    Ok(chunk)
}

fn sha256_file(path: &Path) -> io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.finalize().into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
}
