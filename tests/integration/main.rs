//! One integration-test binary (faster to build and link than one per file).
mod architecture;
mod cli;
mod config_check;
mod corpus;
mod daemon;
mod filing_order;
mod hostile;
mod nutzerkonto;
mod quarantine;
mod records;
mod rules;
mod sla;
mod sla_store;
mod smtp;
mod store;
mod support;
