//! The canonical SQLite store: partners' raw records with provenance, merged entities, the change log
//! and sync runs. One writer connection behind a mutex (SQLite has one writer anyway, and queuing in
//! process avoids `database is locked`); readers open their own connections and never block it (WAL).

pub mod block_keys;
pub mod entities;
pub mod guard;
mod migrations;
pub mod records;
pub mod review;
pub mod runs;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot create the store's folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {path} has schema version {found}, newer than this build understands ({supported}); upgrade tributary")]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("store error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored record {what} is unreadable: {reason}")]
    Corrupt { what: String, reason: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the store file. Cheap to share behind an `Arc`.
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: ReaderPool,
}

/// Read-only connections: idle ones reused so a request does not pay for opening one, and at
/// most `max` out at once. Each holds its own page cache, so thirty-two concurrent requests
/// would otherwise hold thirty-two caches; past a few per core they add no throughput either.
struct ReaderPool {
    state: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    out: usize,
}

/// Read connections allowed out at once: two per core, and at least [`MIN_READERS`].
pub fn reader_limit() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).max(MIN_READERS)
}

impl ReaderPool {
    fn new() -> ReaderPool {
        ReaderPool {
            state: Mutex::default(),
            freed: Condvar::new(),
            max: reader_limit(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a free place, then hands out an idle connection if there is one.
    fn take(&self) -> Option<Connection> {
        let mut state = self.lock();
        while state.out >= self.max {
            state = self.freed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.out += 1;
        state.idle.pop()
    }

    /// Gives a place back, and the connection with it when it is still usable.
    fn give_back(&self, conn: Option<Connection>) {
        let mut state = self.lock();
        state.out = state.out.saturating_sub(1);
        if let Some(conn) = conn {
            state.idle.push(conn);
        }
        drop(state);
        self.freed.notify_one();
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Read-only connections cannot checkpoint. Closing them first makes the writer the last
        // connection, whose close copies the write-ahead log into the database and removes it;
        // otherwise a big sync leaves its whole log for the next process to read and checkpoint.
        self.readers.lock().idle.clear();
        let conn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::debug!(error = %e, "checkpoint at close failed; the log is kept and replayed");
        }
    }
}

/// Fewest read connections allowed out at once, whatever the core count (requests and a sync's
/// feed-state read share them).
const MIN_READERS: usize = 4;

/// A pooled read-only connection; it goes back to the pool when dropped.
pub struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a ReaderPool,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Always Some until drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("reader used after drop"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.pool.give_back(self.conn.take());
    }
}

/// The writer's page cache, in KiB (SQLite takes a negative number as KiB): 8 MiB instead of
/// SQLite's 2, so a sync's upserts keep the records' index pages in memory.
pub const CACHE_KIB: i64 = -8_192;

/// Each reader's page cache, in KiB. Readers answer point lookups, index range scans and whole
/// calendars read once per change (then served from the response cache), none of which a bigger
/// cache keeps in memory; SQLite's default is kept, times the readers allowed out at once.
const READER_CACHE_KIB: i64 = -2_048;

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // (No mmap: the mapped pages would count in the daemon's RSS.)
    conn.pragma_update(None, "cache_size", cache_kib)?;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) the store and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        configure(&conn, CACHE_KIB).map_err(open_err)?;
        // WAL lets readers run during a sync's write transaction; NORMAL sync is durable at each
        // checkpoint and never corrupts on power loss in WAL mode.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // After a checkpoint resets it, a write-ahead log grown by a big sync shrinks back.
        conn.pragma_update(None, "journal_size_limit", 64i64 << 20)
            .map_err(open_err)?;
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > migrations::latest() {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found,
                supported: migrations::latest(),
            });
        }
        migrations::apply(&mut conn).map_err(open_err)?;
        // A run left 'running' belongs to a process that died mid-sync; its transaction rolled back.
        conn.execute(
            "UPDATE runs SET result = 'interrupted', finished_at = COALESCE(finished_at, started_at),
                 error = COALESCE(error, 'the process stopped before this sync finished; nothing was applied')
             WHERE result = 'running'",
            [],
        )
        .map_err(open_err)?;
        Ok(Store {
            path: path.to_path_buf(),
            writer: Mutex::new(conn),
            readers: ReaderPool::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer connection. Hold it only for one transaction.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half-written transaction (rusqlite rolls back on
        // drop), so the connection is still sound to reuse.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A read-only connection from the pool (opened on demand). Readers never wait for the
    /// writer; one waits for another reader only when the pool's limit is out at once.
    pub fn reader(&self) -> Result<Reader<'_>> {
        let conn = match self.readers.take() {
            Some(c) => c,
            None => match self.open_reader() {
                Ok(c) => c,
                Err(e) => {
                    self.readers.give_back(None);
                    return Err(e);
                }
            },
        };
        Ok(Reader {
            conn: Some(conn),
            pool: &self.readers,
        })
    }

    fn open_reader(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: self.path.clone(),
            source,
        })?;
        configure(&conn, READER_CACHE_KIB)?;
        Ok(conn)
    }

    /// Registers the configured partners (name, priority) so queries and survivorship can use them.
    pub fn upsert_partners(&self, partners: &[crate::config::Partner]) -> Result<()> {
        let mut conn = self.writer();
        let tx = conn.transaction()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO partners (id, name, priority) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, priority = excluded.priority",
            )?;
            for p in partners {
                st.execute(rusqlite::params![p.id.as_str(), p.name, p.priority])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// Hands memory freed by SQLite back to the system. SQLite allocates its page caches with the C
/// allocator, whose per-thread arenas keep what a big resolution's cache (128 MiB) freed: a
/// daemon would hold it for good after its first national sync.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's arenas to the kernel; it takes no
    // pointers and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Current time as stored: RFC 3339 UTC with seconds.
pub fn now_text() -> String {
    timestamp(chrono::Utc::now())
}

/// Rows per statement in [`insert_many`].
const ROWS_PER_INSERT: usize = 128;

/// Inserts `n` rows, [`ROWS_PER_INSERT`] to a statement (the last few one at a time): for tiny
/// rows a statement each costs more than the B-tree append. `head` is the statement up to
/// `VALUES`, `row` one row's values with a `?` for each of its `per_row` bound values, `tail`
/// what follows the values (an upsert clause, or nothing). `bind(statement, i, at)` binds row
/// `i`'s values from parameter `at` on, straight from the caller's data: a million rows are
/// never copied into parameter lists first.
pub(crate) fn insert_many(
    tx: &rusqlite::Transaction,
    head: &str,
    row: &str,
    tail: &str,
    n: usize,
    per_row: usize,
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, usize, usize) -> rusqlite::Result<()>,
) -> Result<()> {
    let mut many = tx.prepare_cached(&format!(
        "{head} {} {tail}",
        vec![row; ROWS_PER_INSERT].join(", ")
    ))?;
    let full = n - n % ROWS_PER_INSERT;
    for start in (0..full).step_by(ROWS_PER_INSERT) {
        for j in 0..ROWS_PER_INSERT {
            bind(&mut many, start + j, j * per_row + 1)?;
        }
        many.raw_execute()?;
    }
    let mut one = tx.prepare_cached(&format!("{head} {row} {tail}"))?;
    for i in full..n {
        bind(&mut one, i, 1)?;
        one.raw_execute()?;
    }
    Ok(())
}

/// [`insert_many`] for rows already held as arrays of values.
pub(crate) fn insert_rows<P: rusqlite::ToSql, const N: usize>(
    tx: &rusqlite::Transaction,
    head: &str,
    tail: &str,
    rows: &[[P; N]],
) -> Result<()> {
    let row = format!("({})", vec!["?"; N].join(", "));
    insert_many(tx, head, &row, tail, rows.len(), N, |st, i, at| {
        for (j, v) in rows[i].iter().enumerate() {
            st.raw_bind_parameter(at + j, v)?;
        }
        Ok(())
    })
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_more_readers_than_the_limit_are_out_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let limit = reader_limit();
        let out = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 * limit {
                s.spawn(|| {
                    let r = store.reader().unwrap();
                    let now = out.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    r.query_row("SELECT COUNT(*) FROM entities", [], |_| Ok(()))
                        .unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                    out.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        let most = most.into_inner();
        assert!(most <= limit, "{most} readers out at once, limit {limit}");
        assert!(most >= 2, "readers still run side by side ({most})");
        let pooled = store.readers.lock().idle.len();
        assert!(pooled <= limit, "{pooled} connections kept");
    }
}
