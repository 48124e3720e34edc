//! Opening the gateways of a command: ids, order, concurrency, progress.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};

use execnet::{Error, Gateway, Group, Options, XSpec};
use futures_util::stream::{FuturesUnordered, StreamExt};

/// With more gateways than this, show a progress line while they open
/// (only when stderr is a terminal).
const PROGRESS_ABOVE: usize = 4;

/// A spec of the command line with its gateway id.
#[derive(Debug)]
pub struct Planned {
    pub id: String,
    pub spec: XSpec,
    /// The spec as the user wrote it.
    pub text: String,
}

/// The outcome of opening one planned gateway.
#[derive(Debug)]
pub struct Opened {
    pub id: String,
    pub spec: String,
    pub gateway: Result<Gateway, Error>,
}

/// [`plan`] for a command: no specs means one `popen`; bad specs are
/// reported on stderr (each line prefixed with its id) and give `None`.
pub fn plan_or_report(mut specs: Vec<String>) -> Option<Vec<Planned>> {
    if specs.is_empty() {
        specs.push("popen".to_string());
    }
    match plan(&specs) {
        Ok(planned) => Some(planned),
        Err(bad) => {
            for (id, message) in bad {
                super::report(&id, &message);
            }
            None
        }
    }
}

/// Parse `specs` and give each its id: its `id=`, or the next free
/// `gw0`, `gw1`, … in command-line order (a bad spec takes an id too, so
/// that the others keep theirs). Bad specs are `Err` with `(id, message)`
/// for each.
pub fn plan(specs: &[String]) -> Result<Vec<Planned>, Vec<(String, String)>> {
    // Unknown keys are usage errors too: nothing opens when one spec has a typo.
    let parsed: Vec<_> = specs
        .iter()
        .map(|text| XSpec::parse(text).and_then(|spec| spec.check_keys().map(|()| spec)))
        .collect();
    let explicit: Vec<String> = parsed
        .iter()
        .filter_map(|s| s.as_ref().ok().and_then(|s| s.id().map(str::to_string)))
        .collect();
    let mut next = 0usize;
    let mut auto_id = || loop {
        let candidate = format!("gw{next}");
        next += 1;
        if !explicit.contains(&candidate) {
            break candidate;
        }
    };
    let mut planned = Vec::with_capacity(parsed.len());
    let mut bad = Vec::new();
    for (text, parsed) in specs.iter().zip(parsed) {
        match parsed {
            Ok(mut spec) => {
                let id = match spec.id() {
                    Some(id) => id.to_string(),
                    None => {
                        let id = auto_id();
                        // Setting a plain `gwN` id on a parsed spec cannot fail.
                        let _ = spec.set_id(&id);
                        id
                    }
                };
                planned.push(Planned {
                    id,
                    spec,
                    text: text.clone(),
                });
            }
            Err(e) => bad.push((auto_id(), format!("spec {text:?}: {e}"))),
        }
    }
    if bad.is_empty() {
        Ok(planned)
    } else {
        Err(bad)
    }
}

/// Open every planned gateway in `group`: concurrently, except that a spec
/// naming an earlier one (`via=`, `installvia=`) waits until that one has
/// opened. The result is in command-line order.
pub async fn open_all(group: &Group, planned: Vec<Planned>) -> Vec<Opened> {
    let total = planned.len();
    let progress = RefCell::new(Progress::new(total));
    let waves = waves(&planned);
    let mut slots: Vec<Option<Opened>> = (0..total).map(|_| None).collect();
    let mut planned: Vec<Option<Planned>> = planned.into_iter().map(Some).collect();
    for wave in 0..=waves.iter().copied().max().unwrap_or(0) {
        let mut opening = FuturesUnordered::new();
        for index in (0..total).filter(|&i| waves[i] == wave) {
            let Some(Planned { id, spec, text }) = planned[index].take() else {
                continue;
            };
            opening.push(async move {
                let gateway = group.make_gateway_from(spec).await;
                (
                    index,
                    Opened {
                        id,
                        spec: text,
                        gateway,
                    },
                )
            });
        }
        while let Some((index, opened)) = opening.next().await {
            progress.borrow_mut().done(opened.gateway.is_ok());
            slots[index] = Some(opened);
        }
    }
    progress.borrow_mut().finish();
    slots.into_iter().flatten().collect()
}

/// The wave each spec opens in: 0, or one after the earlier spec it names.
fn waves(planned: &[Planned]) -> Vec<usize> {
    let mut waves: Vec<usize> = Vec::with_capacity(planned.len());
    for p in planned {
        let target = p.spec.via().or_else(|| p.spec.installvia());
        let wave = target
            .and_then(|t| planned[..waves.len()].iter().position(|q| q.id == t))
            .map_or(0, |j| waves[j] + 1);
        waves.push(wave);
    }
    waves
}

/// Options for the gateways of the command line.
pub fn options() -> Options {
    Options::default()
}

/// Why a gateway could not be opened, naming the spec and the failed step.
pub fn describe_failure(opened: &Opened, error: &Error) -> String {
    match error {
        Error::Bootstrap { step, message, .. } => {
            format!(
                "cannot open gateway {:?}: {step} failed: {message}",
                opened.spec
            )
        }
        other => format!("cannot open gateway {:?}: {other}", opened.spec),
    }
}

/// The progress line on stderr.
struct Progress {
    total: usize,
    ready: usize,
    failed: usize,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Self {
        let mut progress = Progress {
            total,
            ready: 0,
            failed: 0,
            shown: total > PROGRESS_ABOVE && std::io::stderr().is_terminal(),
        };
        progress.draw();
        progress
    }

    fn done(&mut self, ok: bool) {
        if ok {
            self.ready += 1;
        } else {
            self.failed += 1;
        }
        self.draw();
    }

    fn draw(&mut self) {
        if !self.shown {
            return;
        }
        let mut line = format!("opening gateways: {}/{} ready", self.ready, self.total);
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K{line}");
        let _ = stderr.flush();
    }

    fn finish(&mut self) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[K");
            let _ = stderr.flush();
            self.shown = false;
        }
    }
}
