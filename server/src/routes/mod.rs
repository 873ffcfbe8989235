//! One module per API family.

pub mod alerts;
pub mod catalog;
pub mod datasources;
pub mod events;
pub mod import;
pub mod intake;
pub mod ops;
pub mod pipes;
pub mod shippers;
pub mod sql;
pub mod tail;
pub mod tokens;
pub mod ui;
