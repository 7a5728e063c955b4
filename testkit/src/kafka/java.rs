//! The Java client's own tools as peers: `java -cp KAFKA_LIBS/* CLASS ARGS`, run to completion
//! ([`JavaTool::run`]) or in the background with its output lines arriving as they are printed
//! ([`JavaTool::spawn`]). Every tool process dies with the test process (a watchdog holds a pipe
//! from it), and a tool still running when its handle is dropped is killed.
//!
//! The tools print their data on stdout (JSON lines for the verifiable producer and consumer, one
//! line per record for the console consumer) and their log on stderr, which is kept apart.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{java, watchdog, KafkaVersion};

/// A Java tool to run: a main class of the Kafka release's jars and its arguments.
#[derive(Debug, Clone)]
pub struct JavaTool {
    version: KafkaVersion,
    class: String,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    jvm: Vec<String>,
}

/// What a finished tool printed.
#[derive(Debug, Clone)]
pub struct JavaOutput {
    /// True when it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error (the log).
    pub stderr: String,
}

impl JavaOutput {
    /// The lines of standard output.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

impl JavaTool {
    /// Main class `class` (e.g. `org.apache.kafka.tools.VerifiableProducer`) of `version`.
    pub fn new(version: KafkaVersion, class: &str) -> Self {
        JavaTool {
            version,
            class: class.into(),
            args: Vec::new(),
            stdin: None,
            jvm: ["-Xms64m", "-Xmx512m", "-XX:+UseSerialGC"]
                .map(String::from)
                .to_vec(),
        }
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Feeds `input` to the tool's standard input, then closes it.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Replaces the JVM options (default: a 512 MB heap, the serial collector).
    pub fn jvm_options(mut self, options: &[&str]) -> Self {
        self.jvm = options.iter().map(|s| s.to_string()).collect();
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(java());
        command
            .args(&self.jvm)
            .args(["-cp", &self.version.classpath()])
            .arg(&self.class)
            .args(&self.args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the tool to completion; panics (with what it printed) if it runs longer than
    /// `timeout`.
    pub fn run(self, timeout: Duration) -> JavaOutput {
        let mut process = self.spawn();
        let status = process.wait(timeout);
        if let Some(reader) = process.reader.take() {
            // The output is read to its end (the process exited or was killed).
            let _ = reader.join();
        }
        let stderr = process.stderr();
        let mut stdout = String::new();
        while let Ok(line) = process.lines.try_recv() {
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let Some(success) = status else {
            panic!(
                "{} ran longer than {timeout:?}; it printed:\n{stdout}\nand logged:\n{}",
                process.class,
                last_lines(&stderr, 40)
            );
        };
        JavaOutput {
            success,
            stdout,
            stderr,
        }
    }

    /// Starts the tool in the background.
    pub fn spawn(self) -> JavaProcess {
        let mut child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run java ({e}); run scripts/install-test-deps"));
        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let out = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("piped");
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (watchdog, pipe) = watchdog(child.id(), None);
        JavaProcess {
            class: self.class,
            child,
            watchdog,
            _watchdog_pipe: pipe,
            lines,
            reader: Some(reader),
            stderr,
        }
    }
}

/// A tool running in the background. Killed when dropped.
#[derive(Debug)]
pub struct JavaProcess {
    class: String,
    child: Child,
    watchdog: Child,
    _watchdog_pipe: ChildStdin,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    stderr: Arc<Mutex<String>>,
}

impl JavaProcess {
    /// The next line the tool prints on stdout; `None` once it closed its output (exited).
    pub async fn next_line(&mut self) -> Option<String> {
        self.lines.recv().await
    }

    /// Takes the stream of output lines, to read on a task of its own while this handle stays
    /// with the test (to terminate or kill the tool); `next_line` then returns `None`.
    pub fn take_lines(&mut self) -> tokio::sync::mpsc::UnboundedReceiver<String> {
        let (_, empty) = tokio::sync::mpsc::unbounded_channel();
        std::mem::replace(&mut self.lines, empty)
    }

    /// The next line if one was printed already.
    pub fn try_next_line(&mut self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the tool to stop (SIGTERM: Java runs its shutdown hooks; a consumer leaves its
    /// group, a producer flushes).
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Kills the tool at once (SIGKILL: a consumer vanishes without leaving its group).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits up to `timeout` for the tool to exit: `Some(success)`, or `None` (then it is
    /// killed).
    pub fn wait(&mut self, timeout: Duration) -> Option<bool> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.success());
            }
            if std::time::Instant::now() >= deadline {
                self.kill();
                return None;
            }
            // std has no wait with a timeout; the exit is polled.
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the tool logged on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The main class, for messages.
    pub fn class(&self) -> &str {
        &self.class
    }
}

impl Drop for JavaProcess {
    fn drop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        self.kill();
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
