//! What a request costs against the request budget, by interaction.

use crate::fhir::{FhirRequest, Interaction};
use std::collections::HashMap;

/// Weights of interactions against the request budget.
///
/// Defaults: read, vread, capabilities and `.well-known/smart-configuration` 1; searches and
/// histories 10; create, update, patch, delete, batch and transaction 20; `$everything` 50;
/// `$export` 100; any other operation 10.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostTable {
    read: u64,
    search: u64,
    write: u64,
    operation: u64,
    operations: HashMap<String, u64>,
}

impl Default for CostTable {
    fn default() -> Self {
        let mut operations = HashMap::new();
        operations.insert("everything".to_owned(), 50);
        operations.insert("export".to_owned(), 100);
        CostTable {
            read: 1,
            search: 10,
            write: 20,
            operation: 10,
            operations,
        }
    }
}

impl CostTable {
    /// Every interaction costs 1 (plain request counting).
    pub fn flat() -> Self {
        CostTable {
            read: 1,
            search: 1,
            write: 1,
            operation: 1,
            operations: HashMap::new(),
        }
    }

    /// Cost of reads, vreads, capabilities and SMART configuration (default 1).
    pub fn read(mut self, cost: u64) -> Self {
        self.read = cost;
        self
    }

    /// Cost of searches and histories (default 10).
    pub fn search(mut self, cost: u64) -> Self {
        self.search = cost;
        self
    }

    /// Cost of writes, batches and transactions (default 20).
    pub fn write(mut self, cost: u64) -> Self {
        self.write = cost;
        self
    }

    /// Cost of an operation not named with [`CostTable::operation`] (default 10).
    pub fn other_operation(mut self, cost: u64) -> Self {
        self.operation = cost;
        self
    }

    /// Cost of the operation `$name` (`name` without the `$`).
    pub fn operation(mut self, name: &str, cost: u64) -> Self {
        self.operations.insert(name.to_owned(), cost);
        self
    }

    /// The cost of this request.
    pub fn cost(&self, request: &FhirRequest) -> u64 {
        match request.interaction() {
            Interaction::Read
            | Interaction::VRead
            | Interaction::Capabilities
            | Interaction::SmartConfiguration => self.read,
            Interaction::SearchType
            | Interaction::SearchSystem
            | Interaction::SearchCompartment
            | Interaction::HistoryInstance
            | Interaction::HistoryType
            | Interaction::HistorySystem => self.search,
            Interaction::Create
            | Interaction::Update
            | Interaction::Patch
            | Interaction::Delete
            | Interaction::Batch
            | Interaction::Transaction => self.write,
            Interaction::Operation => request
                .operation()
                .and_then(|op| self.operations.get(&op.name))
                .copied()
                .unwrap_or(self.operation),
        }
    }
}
