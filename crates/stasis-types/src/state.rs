//! The sandbox lifecycle as data: states and the one table of allowed transitions.
//!
//! The store enforces it with a compare-and-set on every transition; nothing else decides
//! whether a sandbox may move from one state to another.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Creating,
    Running,
    Pausing,
    Paused,
    Resuming,
    Killing,
}

impl SandboxState {
    pub const ALL: [SandboxState; 6] = [
        SandboxState::Creating,
        SandboxState::Running,
        SandboxState::Pausing,
        SandboxState::Paused,
        SandboxState::Resuming,
        SandboxState::Killing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SandboxState::Creating => "creating",
            SandboxState::Running => "running",
            SandboxState::Pausing => "pausing",
            SandboxState::Paused => "paused",
            SandboxState::Resuming => "resuming",
            SandboxState::Killing => "killing",
        }
    }

    /// `running` or `paused`, as E2B names them.
    pub fn public_name(self) -> &'static str {
        match self.public() {
            PublicState::Running => "running",
            PublicState::Paused => "paused",
        }
    }

    /// A state in which an operation is under way; others answer 409 meanwhile.
    pub fn is_transitional(self) -> bool {
        matches!(self, SandboxState::Creating | SandboxState::Pausing | SandboxState::Resuming | SandboxState::Killing)
    }

    /// How E2B's API shows it: only `running` and `paused` exist there. A sandbox being
    /// paused is already "paused" for listing (it will be, and it serves nothing), one being
    /// resumed or created is "running".
    pub fn public(self) -> PublicState {
        match self {
            SandboxState::Creating | SandboxState::Running | SandboxState::Resuming | SandboxState::Killing => PublicState::Running,
            SandboxState::Pausing | SandboxState::Paused => PublicState::Paused,
        }
    }
}

/// `from → to` is allowed. Killing is reachable from every state (a failed create or resume
/// is cleaned up by killing); a failed pause goes back to running, a failed resume to paused.
pub fn can_transition(from: SandboxState, to: SandboxState) -> bool {
    use SandboxState::*;
    matches!(
        (from, to),
        (Creating, Running)
            | (Running, Pausing)
            | (Pausing, Paused)
            | (Pausing, Running)
            | (Paused, Resuming)
            | (Resuming, Running)
            | (Resuming, Paused)
            | (_, Killing)
    ) && from != Killing
}

impl fmt::Display for SandboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SandboxState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown sandbox state {s:?}"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublicState {
    Running,
    Paused,
}

impl FromStr for PublicState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "running" => Ok(PublicState::Running),
            "paused" => Ok(PublicState::Paused),
            other => Err(format!("unknown state {other:?}: expected running or paused")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SandboxState::*;
    use super::*;

    /// The whole matrix, spelled out: a change to the table must change this test too.
    #[test]
    fn transition_matrix() {
        let allowed = [
            (Creating, Running),
            (Creating, Killing),
            (Running, Pausing),
            (Running, Killing),
            (Pausing, Paused),
            (Pausing, Running),
            (Pausing, Killing),
            (Paused, Resuming),
            (Paused, Killing),
            (Resuming, Running),
            (Resuming, Paused),
            (Resuming, Killing),
        ];
        for from in SandboxState::ALL {
            for to in SandboxState::ALL {
                assert_eq!(can_transition(from, to), allowed.contains(&(from, to)), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in SandboxState::ALL {
            assert_eq!(s.as_str().parse::<SandboxState>().unwrap(), s);
        }
        assert!("gone".parse::<SandboxState>().is_err());
    }
}
