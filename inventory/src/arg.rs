//! `-i/--inventory FILE`, defined once for every `cairn` command that reads the inventory.

use std::path::PathBuf;

use crate::{Error, Inventory, DEFAULT_FILE};

/// The inventory argument; flatten it into a command's arguments.
#[derive(Clone, Debug, clap::Args)]
pub struct InventoryArg {
    /// The cluster's inventory.
    #[arg(
        short = 'i',
        long = "inventory",
        value_name = "FILE",
        env = "CAIRN_INVENTORY",
        default_value = DEFAULT_FILE
    )]
    pub inventory: PathBuf,
}

impl InventoryArg {
    /// Reads and checks the file.
    pub fn load(&self) -> Result<Inventory, Error> {
        Inventory::load(&self.inventory)
    }
}
