//! The tables, created at start on every endpoint when missing (`IF NOT
//! EXISTS`; no `ON CLUSTER`, which needs ZooKeeper). With a cluster name, each
//! table is a local `MergeTree` on every node plus a `Distributed` table of
//! the same name over the cluster, which every read and write goes through;
//! without one, the `MergeTree` itself.
//!
//! SQL here is what Debian's ClickHouse 18.16 and current servers both
//! accept. Times are stored as `DateTime` and exchanged as Unix seconds, so
//! the server's time zone never matters.

use logpulse_model::DataSource;

/// Settings DDL needs on 18.16 (`LowCardinality` is experimental there;
/// current servers accept the setting and ignore it).
pub const DDL_SETTINGS: &[(&str, &str)] = &[("allow_experimental_low_cardinality_type", "1")];

/// Tables of logpulse's own that are not data sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meta {
    /// Scoped tokens, one row per change (`version` orders them).
    Tokens,
    /// Named values shared by every node (workspace id, admin token).
    Values,
    /// Node ids drawn by `logpulsed` nodes for their seqs.
    Nodes,
}

/// A table: a data source or one of logpulse's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    Data(DataSource),
    Meta(Meta),
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Data(DataSource::SystemLogs),
        Table::Data(DataSource::Thresholds),
        Table::Data(DataSource::SystemLogsQuarantine),
        Table::Data(DataSource::ThresholdsQuarantine),
        Table::Meta(Meta::Tokens),
        Table::Meta(Meta::Values),
        Table::Meta(Meta::Nodes),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Data(ds) => ds.name(),
            Table::Meta(Meta::Tokens) => "logpulse_tokens",
            Table::Meta(Meta::Values) => "logpulse_values",
            Table::Meta(Meta::Nodes) => "logpulse_nodes",
        }
    }

    /// Columns and engine clauses of the local table.
    fn definition(self) -> &'static str {
        match self {
            Table::Data(DataSource::SystemLogs) => {
                "(timestamp DateTime, server_id String, service LowCardinality(String), \
                 severity LowCardinality(String), message String, error_code String, \
                 resource_id String, metadata String, seq UInt64, batch UInt64) \
                 ENGINE = MergeTree PARTITION BY toDate(timestamp) \
                 ORDER BY (service, severity, timestamp, seq)"
            }
            // Every row is kept; the row in force per key is chosen when read
            // (argMax over (updated_at, seq)), exact whatever the merges did.
            Table::Data(DataSource::Thresholds) => {
                "(service String, severity String, threshold_per_minute Float64, \
                 active UInt8, updated_at DateTime, seq UInt64, batch UInt64) \
                 ENGINE = MergeTree ORDER BY (service, severity, updated_at, seq)"
            }
            Table::Data(_) => {
                "(insertion_date DateTime, c__error_column Array(String), \
                 c__error Array(String), c__import_id String, c__raw String, seq UInt64, \
                 batch UInt64) \
                 ENGINE = MergeTree PARTITION BY toYYYYMM(insertion_date) \
                 ORDER BY (insertion_date, seq)"
            }
            Table::Meta(Meta::Tokens) => {
                "(name String, token String, scopes String, deleted UInt8, version UInt64) \
                 ENGINE = MergeTree ORDER BY (name, version)"
            }
            Table::Meta(Meta::Values) => {
                "(name String, value String, version UInt64) \
                 ENGINE = MergeTree ORDER BY (name, version)"
            }
            Table::Meta(Meta::Nodes) => {
                "(node_id UInt16, instance String, host String, started UInt64) \
                 ENGINE = MergeTree ORDER BY (node_id, started)"
            }
        }
    }

    /// What spreads rows over shards: a hash of `batch`, the first seq of
    /// the request that brought the row, so that a request's rows all go to
    /// one shard, in one insert there, and become visible together (the seq
    /// itself would not do: its low bits are the node id, so `seq % shards`
    /// would send all of one node's rows to one shard).
    fn sharding_key(self) -> &'static str {
        match self {
            Table::Data(_) => "intHash64(batch)",
            Table::Meta(_) => "rand()",
        }
    }
}

/// Where the tables live.
#[derive(Clone, Debug)]
pub struct Layout {
    pub database: String,
    pub cluster: Option<String>,
}

impl Layout {
    /// What reads and writes name: `db.table`.
    pub fn table(&self, t: Table) -> String {
        format!("{}.{}", ident(&self.database), t.name())
    }

    /// The table holding a node's own rows (`<table>_local` in a cluster).
    pub fn local(&self, t: Table) -> String {
        match self.cluster {
            Some(_) => format!("{}.{}_local", ident(&self.database), t.name()),
            None => self.table(t),
        }
    }

    /// The statements that create everything, in order.
    pub fn ddl(&self) -> Vec<String> {
        let mut out = vec![format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            ident(&self.database)
        )];
        for t in Table::ALL {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {} {}",
                self.local(t),
                t.definition()
            ));
            if let Some(cluster) = &self.cluster {
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS {} AS {} ENGINE = Distributed({}, {}, {}_local, {})",
                    self.table(t),
                    self.local(t),
                    ident(cluster),
                    ident(&self.database),
                    t.name(),
                    t.sharding_key()
                ));
            }
        }
        out
    }
}

/// A database, cluster or table name, back-quoted.
pub fn ident(name: &str) -> String {
    format!("`{}`", name.replace('\\', "\\\\").replace('`', "\\`"))
}

/// A string literal, escaped on the client (18.16 has no server-side
/// parameters).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_literals_and_names() {
        assert_eq!(quote(r"it's a \ test"), r"'it\'s a \\ test'");
        assert_eq!(ident("log`s"), "`log\\`s`");
    }

    #[test]
    fn a_cluster_gets_local_and_distributed_tables() {
        let l = Layout {
            database: "lp".into(),
            cluster: Some("c".into()),
        };
        let ddl = l.ddl();
        assert!(ddl[1].starts_with("CREATE TABLE IF NOT EXISTS `lp`.system_logs_local ("));
        assert!(
            ddl[2].contains("ENGINE = Distributed(`c`, `lp`, system_logs_local, intHash64(batch))")
        );
        let single = Layout {
            database: "lp".into(),
            cluster: None,
        };
        assert_eq!(single.ddl().len(), 1 + Table::ALL.len());
        assert_eq!(
            single.local(Table::Meta(Meta::Tokens)),
            "`lp`.logpulse_tokens"
        );
    }
}
