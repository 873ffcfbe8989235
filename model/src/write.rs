//! What an append asks for and what it is told.

/// How durable an append must be before it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Durability {
    /// Visible to queries. The embedded engine: in the page cache, which
    /// survives a crash of the process (the maps are shared), and a power
    /// cut once the next periodic sync has run.
    #[default]
    Visible,
    /// Survives a power cut (the embedded engine: fsynced; a database
    /// backend: stored on every replica it writes synchronously).
    Synced,
}

/// What an append returns: the seqs given to its rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppendReceipt {
    pub rows: u64,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Statistics of one data source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataSourceStats {
    pub rows: u64,
    /// Bytes the data source takes in the backend's storage.
    pub bytes: u64,
}

/// One figure a storage backend reports on `/metrics`.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendMetric {
    pub name: &'static str,
    pub help: &'static str,
    /// A counter (only goes up) rather than a gauge.
    pub counter: bool,
    pub value: f64,
}
