//! Grouping keys by prefix: the first `depth` `/`-separated segments of a key, with their
//! trailing `/` (`/registry/pods/` at depth 2). A leading `/` does not count as a segment.
//! Keys with fewer segments group under their parent (`/registry/version` under
//! `/registry/`), and keys without any `/` under the empty prefix, so flat keyspaces do not
//! make one group per key.

/// The prefix of `key` at `depth` (at least 1), lossily decoded for display.
pub fn prefix_of(key: &[u8], depth: usize) -> String {
    let start = usize::from(key.first() == Some(&b'/'));
    let mut seen = 0;
    let mut end = 0;
    for (i, b) in key.iter().enumerate().skip(start) {
        if *b == b'/' {
            seen += 1;
            end = i + 1;
            if seen == depth {
                break;
            }
        }
    }
    if end == 0 && start == 1 {
        end = 1;
    }
    String::from_utf8_lossy(&key[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_take_depth_segments_after_a_leading_slash() {
        assert_eq!(prefix_of(b"/registry/pods/ns/p1", 2), "/registry/pods/");
        assert_eq!(prefix_of(b"/registry/pods/ns/p1", 1), "/registry/");
        assert_eq!(prefix_of(b"/registry/pods/ns/p1", 3), "/registry/pods/ns/");
        assert_eq!(prefix_of(b"a/b/c", 2), "a/b/");
    }

    #[test]
    fn short_keys_group_under_their_parent() {
        assert_eq!(prefix_of(b"/registry/version", 2), "/registry/");
        assert_eq!(prefix_of(b"/top", 2), "/");
        assert_eq!(prefix_of(b"flat", 2), "");
        assert_eq!(prefix_of(b"", 2), "");
    }
}
