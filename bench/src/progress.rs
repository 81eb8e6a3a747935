//! The progress display on stderr: one status line per step, rewritten in place on a
//! terminal, printed as it changes otherwise (a log file then shows every step).

use std::{
    io::{IsTerminal, Write},
    sync::Mutex,
    time::Instant,
};

/// The progress of the whole run. Shared by the threads of a parallel start.
pub struct Progress {
    started: Instant,
    terminal: bool,
    state: Mutex<State>,
}

struct State {
    section: String,
    done: usize,
    total: usize,
    open_line: bool,
}

impl Progress {
    /// A display that rewrites its line when stderr is a terminal.
    pub fn new() -> Progress {
        Progress {
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                section: String::new(),
                done: 0,
                total: 0,
                open_line: false,
            }),
        }
    }

    /// Starts a step of `total` units (pods started, pods removed, …).
    pub fn section(&self, section: &str, total: usize) {
        let mut state = self.lock();
        state.section = section.to_string();
        state.done = 0;
        state.total = total;
        self.draw(&mut state, "");
    }

    /// One unit of the step is done; `detail` says how it went.
    pub fn advance(&self, detail: &str) {
        let mut state = self.lock();
        state.done += 1;
        self.draw(&mut state, detail);
    }

    /// Shows `detail` without counting a unit.
    pub fn note(&self, detail: &str) {
        let mut state = self.lock();
        self.draw(&mut state, detail);
    }

    /// Ends the step's line with a result.
    pub fn finish(&self, result: &str) {
        let mut state = self.lock();
        self.draw(&mut state, result);
        if state.open_line {
            eprintln!();
            state.open_line = false;
        }
    }

    fn draw(&self, state: &mut State, detail: &str) {
        let elapsed = self.started.elapsed().as_secs();
        let count = if state.total > 0 {
            format!(" {}/{}", state.done, state.total)
        } else {
            String::new()
        };
        let line = format!(
            "[{:02}:{:02}] {}{count}{}{detail}",
            elapsed / 60,
            elapsed % 60,
            state.section,
            if detail.is_empty() { "" } else { "  " },
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[K{line}");
            let _ = err.flush();
            state.open_line = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}
