//! What `install`, `iis enable` and `iis disable` did or would do, step by step, as printed.
//!
//! Each step ends in one [`Outcome`]; a step that touches IIS carries the exact commands it
//! ran or would run. A second `install` over an installed app reports every step
//! `unchanged`, which is how the idempotency tests (and a reader of the msdeploy log) see that
//! nothing moved. No I/O here.

use std::fmt;

use super::appcmd::CommandLine;

/// Why IIS commands were printed instead of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    /// `--dry-run` was given.
    Requested,
    /// Not Windows: appcmd and icacls do not exist here.
    NotWindows,
}

impl DryRun {
    /// The dry run this machine implies: always one off Windows (where appcmd cannot even be
    /// asked what is registered), else only when asked.
    pub fn for_host(requested: bool) -> Option<DryRun> {
        if !cfg!(windows) {
            Some(DryRun::NotWindows)
        } else if requested {
            Some(DryRun::Requested)
        } else {
            None
        }
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DryRun::Requested => "dry run (--dry-run): IIS and ACLs were not changed",
            DryRun::NotWindows => {
                "dry run (this is not Windows, so appcmd and icacls cannot run here): IIS and ACLs were not changed"
            }
        })
    }
}

/// A command with an optional condition (`only if already registered`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// The command.
    pub command: CommandLine,
    /// When it applies, if not always.
    pub note: Option<String>,
}

impl Planned {
    /// A command that always runs.
    pub fn always(command: CommandLine) -> Self {
        Self {
            command,
            note: None,
        }
    }

    /// A command that runs only under `note`.
    pub fn when(command: CommandLine, note: impl Into<String>) -> Self {
        Self {
            command,
            note: Some(note.into()),
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Already as wanted; nothing done.
    Unchanged,
    /// Something was changed (`created`, `written`, `registered`, `removed`…).
    Changed(String),
    /// Commands printed, not run (see [`DryRun`]).
    Planned,
    /// Not applicable here, with the reason.
    Skipped(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Changed(what) => f.write_str(what),
            Outcome::Planned => f.write_str("dry run"),
            Outcome::Skipped(why) => write!(f, "skipped ({why})"),
        }
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Short name (`venv`, `web.config`, `FastCGI application`).
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Extra lines (paths, versions, the differences that caused a change).
    pub notes: Vec<String>,
    /// Commands run, or to run in a dry run.
    pub commands: Vec<Planned>,
}

impl Step {
    /// A step with no notes or commands.
    pub fn new(name: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            name: name.into(),
            outcome,
            notes: Vec::new(),
            commands: Vec::new(),
        }
    }

    /// Adds a note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Sets the commands.
    pub fn with_commands(mut self, commands: Vec<Planned>) -> Self {
        self.commands = commands;
        self
    }
}

/// Every step of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// First line (`iiswsgi install: FlaskHello in C:\inetpub\wwwroot\FlaskHello`).
    pub title: String,
    /// Set when IIS commands were printed instead of run.
    pub dry_run: Option<DryRun>,
    /// Facts found on the way (folders looked at, the Python used, warnings).
    pub notes: Vec<String>,
    /// The steps in order.
    pub steps: Vec<Step>,
}

impl Report {
    /// Whether every step ended unchanged or skipped (nothing was or would be changed).
    pub fn is_noop(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Unchanged | Outcome::Skipped(_)))
    }

    /// The steps that changed something.
    pub fn changed(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Changed(_)))
    }

    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        if let Some(d) = self.dry_run {
            writeln!(f, "{d}")?;
        }
        for n in &self.notes {
            writeln!(f, "  {n}")?;
        }
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(0);
        for s in &self.steps {
            writeln!(f, "  {:width$}  {}", s.name, s.outcome)?;
            for n in &s.notes {
                writeln!(f, "  {:width$}    {n}", "")?;
            }
            for p in &s.commands {
                if let Some(note) = &p.note {
                    writeln!(f, "  {:width$}    :: {note}", "")?;
                }
                writeln!(f, "  {:width$}    {}", "", p.command)?;
            }
        }
        Ok(())
    }
}
