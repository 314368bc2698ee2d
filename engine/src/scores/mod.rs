//! The clinical scores of scoring.md, as pure functions of a patient's chart: NEWS2 with its
//! components ([`news2`]), and qSOFA and SIRS ([`sepsis`]).

pub mod news2;
pub mod sepsis;
