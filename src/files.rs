//! Files the server writes hold personal data (databases, uploaded
//! extracts) or secrets (key files): they are private to the server's user.
//! The process creates everything with umask 077; folders it owns are 0700
//! and files it finds from earlier runs are tightened at start-up.

use std::path::Path;

/// Everything the process creates from now on is private (0600 files,
/// 0700 folders): SQLite databases and their journals, key files, uploads.
pub fn private_by_default() {
    // SAFETY: umask only sets the process's file-creation mask; it cannot
    // fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Creates `dir` if needed and makes it 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)
}

/// Makes an existing file 0600 (nothing to do when it does not exist).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        set_mode(path, 0o600)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Removes the files left in `dir` (uploads of jobs a crash ended);
/// returns how many.
pub fn sweep(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_folders_are_0700_and_swept_of_leftovers() {
        let base = tempfile::tempdir().expect("dir");
        let dir = base.path().join("uploads");
        private_dir(&dir).expect("dir");
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::write(dir.join("mapce-import-1"), b"x").expect("write");
        private_file(&dir.join("mapce-import-1")).expect("chmod");
        let mode = std::fs::metadata(dir.join("mapce-import-1"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(sweep(&dir).expect("sweep"), 1);
        assert_eq!(std::fs::read_dir(&dir).expect("read").count(), 0);
    }
}
