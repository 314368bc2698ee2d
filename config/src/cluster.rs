//! `[cluster]`: several `vigil run` processes sharing the inbound streams by partitions
//! (contracts.md section 7, docs/cluster.md). Without the section a process owns everything and
//! the streams are not partitioned.

use serde::Deserialize;

use crate::Duration;

/// Most partitions a cluster may split its streams into: far beyond the 1,000,000-patient
/// calculation of docs/cluster.md (64), small enough that a member's consumers stay few.
pub const MAX_PARTITIONS: u32 = 1024;

/// This process's place in a cluster of engines.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This process's stable name, unique in the cluster (default: the host name).
    pub member: String,
    /// Partitions of `VITALS`, `CHECKINS` and `OCCUPANCY`; fixed once the streams exist.
    pub partitions: u32,
    /// JetStream replicas of every stream the engine creates.
    pub replicas: usize,
    /// How long a silent member keeps its partitions before the others take them.
    pub failover: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            member: host_member(),
            partitions: 16,
            replicas: 1,
            failover: Duration::from_secs(10),
        }
    }
}

/// The host name as a member name: characters a name may not hold become `-`.
fn host_member() -> String {
    let node = rustix::system::uname();
    let name: String = node
        .nodename()
        .to_string_lossy()
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "vigil".into()
    } else {
        name
    }
}

/// Checks `[cluster]`: a member name that can stand in a subject, partitions in
/// 1..=[`MAX_PARTITIONS`], replicas 1..=5 (JetStream's most), and a failover long enough for
/// three heartbeats of at least 100 ms.
pub(crate) fn check_cluster(path: &str, c: &ClusterConfig) -> Result<(), crate::ConfigError> {
    use crate::invalid;
    if !crate::is_token(&c.member) {
        return Err(invalid(
            path,
            "cluster.member",
            "must match [A-Za-z0-9_-]{1,64}",
        ));
    }
    if !(1..=MAX_PARTITIONS).contains(&c.partitions) {
        return Err(invalid(
            path,
            "cluster.partitions",
            format!("must be 1 to {MAX_PARTITIONS}"),
        ));
    }
    if !(1..=5).contains(&c.replicas) {
        return Err(invalid(
            path,
            "cluster.replicas",
            "must be 1 to 5 (JetStream keeps at most 5 replicas)",
        ));
    }
    if c.failover.as_millis() < 1000 {
        return Err(invalid(path, "cluster.failover", "must be at least 1s"));
    }
    Ok(())
}
