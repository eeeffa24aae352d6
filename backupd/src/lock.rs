//! A lock object in the store, so two daemons never back up one cluster at once. It carries
//! an expiry so that a crashed holder does not block backups forever.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::ObjectStore;
use crate::Error;

/// How long a lock holds without being released.
pub const LEASE: chrono::Duration = chrono::Duration::hours(6);

#[derive(Debug, Serialize, Deserialize)]
struct LockFile {
    owner: String,
    until: DateTime<Utc>,
}

/// A held lock; release it with [`Lock::release`].
#[derive(Debug)]
pub struct Lock {
    key: String,
    owner: String,
}

/// A name for one [`crate::Backups`] handle in this process, for the lock.
pub fn owner() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}/pid {}/{n}", host.trim(), std::process::id())
}

impl Lock {
    /// Takes the lock at `key` for `owner`, or says who holds it.
    pub async fn acquire(
        store: &dyn ObjectStore,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let body = serde_json::to_vec(&LockFile {
            owner: owner.to_string(),
            until: now + LEASE,
        })?;
        for _ in 0..2 {
            if store.put_if_absent(key, body.clone().into()).await? {
                return Ok(Self {
                    key: key.to_string(),
                    owner: owner.to_string(),
                });
            }
            let held: Option<LockFile> = match store.get(key).await? {
                Some(data) => serde_json::from_slice(&data).ok(),
                // Released in between: try again.
                None => continue,
            };
            match held {
                // Ours from a run whose release failed (the store was away): take it again.
                Some(h) if h.owner == owner => {
                    store.put(key, body.clone().into()).await?;
                    return Ok(Self {
                        key: key.to_string(),
                        owner: owner.to_string(),
                    });
                }
                Some(h) if h.until > now => {
                    return Err(Error::Locked {
                        owner: h.owner,
                        until: h.until.to_rfc3339(),
                        key: key.to_string(),
                    })
                }
                // Expired: the holder is gone.
                Some(_) => store.delete(key).await?,
                None => {
                    return Err(Error::Locked {
                        owner: "unknown (the lock object is unreadable)".into(),
                        until: "unknown".into(),
                        key: key.to_string(),
                    })
                }
            }
        }
        Err(Error::Locked {
            owner: "another process".into(),
            until: "unknown".into(),
            key: key.to_string(),
        })
    }

    /// Gives the lock up (if it is still ours).
    pub async fn release(self, store: &dyn ObjectStore) -> Result<(), Error> {
        if let Some(data) = store.get(&self.key).await? {
            let ours =
                serde_json::from_slice::<LockFile>(&data).is_ok_and(|l| l.owner == self.owner);
            if ours {
                store.delete(&self.key).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn a_second_owner_waits_until_release_or_expiry() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let a = Lock::acquire(&store, "c/lock.json", "a", now)
            .await
            .expect("a");
        let err = Lock::acquire(&store, "c/lock.json", "b", now)
            .await
            .expect_err("held");
        assert!(
            err.to_string()
                .contains("another backup of this cluster runs (a, until"),
            "{err}"
        );
        a.release(&store).await.expect("release");
        let b = Lock::acquire(&store, "c/lock.json", "b", now)
            .await
            .expect("b");
        drop(b);
        let c = Lock::acquire(
            &store,
            "c/lock.json",
            "c",
            now + LEASE + chrono::Duration::seconds(1),
        )
        .await
        .expect("expired lock is taken over");
        c.release(&store).await.expect("release");
    }
}
