//! The fuzz loop: a seeded generator (random inputs and mutations of a corpus), every target run
//! on every input under catch_unwind, a watchdog for inputs that hang, and the counts.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One target: runs on an input, panics on a failed check, and returns the features it saw as
/// bits (which paths the input took). An input showing a feature no input showed before joins
/// the corpus: coverage feedback without compiler instrumentation.
pub type Target = (&'static str, fn(&[u8]) -> u64);

/// An input running longer than this is a hang.
pub const HANG_AFTER: Duration = Duration::from_secs(1);
/// Largest input generated; mutations keep inputs under it.
const MAX_INPUT: usize = 64 * 1024;
/// Inputs kept for mutation at most.
const MAX_CORPUS: usize = 4096;
/// Panicking inputs written to disk at most (the count goes on).
const MAX_SAVED: usize = 20;

/// splitmix64: small, fast, and the same sequence for the same seed on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// FNV-1a of `bytes`: names saved inputs and seeds per-input generators.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// What a run found.
#[derive(Default)]
pub struct Counts {
    pub inputs: u64,
    pub panics: u64,
    pub corpus: usize,
    pub elapsed: Duration,
    /// The longest any one input took, and its size.
    pub slowest: (Duration, usize),
}

pub struct Config {
    pub seed: u64,
    pub time: Duration,
    /// Where panicking and hanging inputs are written.
    pub out: PathBuf,
}

/// The message of the last panic, recorded by the quiet hook `run` installs.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Fuzz `targets` from `seeds` until `config.time` has passed.
pub fn run(targets: &[Target], seeds: Vec<Vec<u8>>, config: &Config) -> Counts {
    std::panic::set_hook(Box::new(|info| {
        let text = shim_host::status::panic_text(info.payload());
        let at = info.location().map(|l| l.to_string()).unwrap_or_default();
        *lock(&LAST_PANIC) = format!("{text} at {at}");
    }));
    let watch = Watch::start(config.out.clone());
    let mut rng = Rng::new(config.seed);
    let mut corpus = seeds;
    let mut seen = vec![0u64; targets.len()];
    let mut counts = Counts::default();
    let started = Instant::now();
    let mut saved = 0;
    while started.elapsed() < config.time {
        // Time is read once per batch: the clock must not cost more than the targets.
        for _ in 0..64 {
            let input = generate(&mut rng, &corpus);
            watch.begin(&input);
            let began = Instant::now();
            let mut new = false;
            for ((name, target), seen) in targets.iter().zip(seen.iter_mut()) {
                match catch_unwind(AssertUnwindSafe(|| target(&input))) {
                    Ok(features) => {
                        new |= features & !*seen != 0;
                        *seen |= features;
                    }
                    Err(_) => {
                        counts.panics += 1;
                        let why = lock(&LAST_PANIC).clone();
                        if saved < MAX_SAVED {
                            saved += 1;
                            let path = save(&config.out, "panic", &input);
                            println!("fuzz: PANIC in {name}: {why} (input: {})", path.display());
                        }
                    }
                }
            }
            watch.end();
            let took = began.elapsed();
            if took > counts.slowest.0 {
                counts.slowest = (took, input.len());
            }
            counts.inputs += 1;
            if new && corpus.len() < MAX_CORPUS {
                corpus.push(input);
            }
        }
    }
    counts.corpus = corpus.len();
    counts.elapsed = started.elapsed();
    let _ = std::panic::take_hook();
    counts
}

/// Run every target once on `input` (a saved finding), letting a panic print as usual.
pub fn replay(targets: &[Target], input: &[u8]) {
    for (name, target) in targets {
        let features = target(input);
        println!("fuzz: {name}: ok (features {features:016x})");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Write `input` to `<out>/<kind>-<hash>.bin`; the path (best effort: a failure is printed).
fn save(out: &Path, kind: &str, input: &[u8]) -> PathBuf {
    let path = out.join(format!("{kind}-{:016x}.bin", fnv(input)));
    if let Err(e) = std::fs::create_dir_all(out).and_then(|()| std::fs::write(&path, input)) {
        println!("fuzz: cannot save {}: {e}", path.display());
    }
    path
}

/// A new input: random bytes now and then, else one to four mutations of a corpus input
/// (sometimes spliced with another).
fn generate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    if corpus.is_empty() || rng.chance(10) {
        let len = if rng.chance(16) {
            rng.below(MAX_INPUT)
        } else {
            rng.below(256)
        };
        return rng.bytes(len);
    }
    let mut input = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(4) {
        mutate(rng, &mut input, corpus);
    }
    input.truncate(MAX_INPUT);
    input
}

/// Values that sit on the edges parsers check: lengths, stream ids, varint boundaries.
const INTERESTING: [u32; 12] = [
    0,
    1,
    2,
    9,
    10,
    0x7f,
    0x80,
    0xffff,
    4 << 20,
    (4 << 20) + 1,
    0x7fff_ffff,
    u32::MAX,
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    let len = input.len();
    match rng.below(10) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
        }
        2 if len > 0 => {
            let i = rng.below(len);
            input[i] = INTERESTING[rng.below(INTERESTING.len())] as u8;
        }
        3 if len >= 4 => {
            // A big-endian u32 (frame lengths and stream ids) set to an edge value.
            let i = rng.below(len - 3);
            let v = INTERESTING[rng.below(INTERESTING.len())];
            input[i..i + 4].copy_from_slice(&v.to_be_bytes());
        }
        4 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes = rng.bytes(n);
            input.splice(at..at, bytes);
        }
        5 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            input.drain(at..at + n);
        }
        6 if len > 0 => {
            // Repeat a slice: many frames, repeated fields.
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let copy = input[at..at + n].to_vec();
            let to = rng.below(len + 1);
            input.splice(to..to, copy);
        }
        7 => {
            let other = &corpus[rng.below(corpus.len())];
            let cut = rng.below(len + 1);
            input.truncate(cut);
            let from = rng.below(other.len() + 1);
            input.extend_from_slice(&other[from..]);
        }
        8 => {
            let other = &corpus[rng.below(corpus.len())];
            input.extend_from_slice(other);
        }
        _ if len > 0 => input.truncate(rng.below(len)),
        _ => {
            let n = 1 + rng.below(16);
            input.extend(rng.bytes(n));
        }
    }
}

/// The watchdog: an input still running after HANG_AFTER is saved and reported, and the process
/// exits (the thread running it cannot be stopped).
struct Watch {
    shared: Arc<Shared>,
}

struct Shared {
    /// Milliseconds since `epoch` at which the current input started; 0 when idle.
    since: AtomicU64,
    input: Mutex<Vec<u8>>,
    epoch: Instant,
    stop: AtomicBool,
}

impl Watch {
    fn start(out: PathBuf) -> Watch {
        let shared = Arc::new(Shared {
            since: AtomicU64::new(0),
            input: Mutex::new(Vec::new()),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
        });
        let watched = Arc::clone(&shared);
        std::thread::spawn(move || {
            while !watched.stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let since = watched.since.load(Ordering::Relaxed);
                let now = watched.epoch.elapsed().as_millis() as u64;
                if since != 0 && now.saturating_sub(since) > HANG_AFTER.as_millis() as u64 {
                    let input = lock(&watched.input).clone();
                    let path = save(&out, "hang", &input);
                    println!(
                        "fuzz: HANG: one input ran over {:?} (input: {})",
                        HANG_AFTER,
                        path.display()
                    );
                    println!("fuzz: stopped at the first hang");
                    std::process::exit(2);
                }
            }
        });
        Watch { shared }
    }

    fn begin(&self, input: &[u8]) {
        let mut current = lock(&self.shared.input);
        current.clear();
        current.extend_from_slice(input);
        drop(current);
        let now = self.shared.epoch.elapsed().as_millis() as u64;
        self.shared.since.store(now.max(1), Ordering::Relaxed);
    }

    fn end(&self) {
        self.shared.since.store(0, Ordering::Relaxed);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let corpus = vec![b"seed one".to_vec(), vec![0, 0, 0, 1, 0, 0, 0, 1, 1, 0]];
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(generate(&mut a, &corpus), generate(&mut b, &corpus));
        }
    }

    #[test]
    fn a_panicking_target_is_counted_and_the_run_goes_on() {
        fn boom(input: &[u8]) -> u64 {
            if input.first() == Some(&0x42) {
                panic!("found 0x42");
            }
            0
        }
        let out = std::env::temp_dir().join(format!("shim-fuzz-test-{}", std::process::id()));
        let counts = run(
            &[("boom", boom)],
            vec![vec![0x42], vec![0x41]],
            &Config {
                seed: 1,
                time: Duration::from_millis(200),
                out: out.clone(),
            },
        );
        assert!(counts.inputs > 100, "{} inputs", counts.inputs);
        assert!(counts.panics > 0);
        let _ = std::fs::remove_dir_all(out);
    }
}
