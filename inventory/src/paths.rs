//! Paths in the inventory are written for the operator's shell: `~` is the home directory and
//! relative paths are against the inventory's own directory (not wherever a tool is started).

use std::path::{Path, PathBuf};

/// `path` with a leading `~` expanded and, when relative, joined to `dir`.
pub fn resolve(dir: &Path, path: &Path) -> PathBuf {
    let expanded = match path.strip_prefix("~") {
        Ok(rest) => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(rest),
            None => path.to_path_buf(),
        },
        Err(_) => path.to_path_buf(),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        dir.join(expanded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_against_the_inventory_directory() {
        assert_eq!(
            resolve(Path::new("/etc/cairn"), Path::new("pki")),
            Path::new("/etc/cairn/pki")
        );
        assert_eq!(
            resolve(Path::new("/etc/cairn"), Path::new("/srv/pki")),
            Path::new("/srv/pki")
        );
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = std::env::var_os("HOME").expect("HOME is set for tests");
        assert_eq!(
            resolve(Path::new("/etc/cairn"), Path::new("~/.ssh/id")),
            PathBuf::from(home).join(".ssh/id")
        );
        // Only a whole leading component is expanded.
        assert_eq!(
            resolve(Path::new("/d"), Path::new("~x/id")),
            Path::new("/d/~x/id")
        );
    }
}
