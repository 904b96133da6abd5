//! Opening the client's fifos (and plain files) so that no open(2) can block.
//!
//! A fifo open for reading with O_NONBLOCK returns at once; a fifo open for writing with O_NONBLOCK
//! succeeds as soon as any reader exists. So we open our own reader first and our writer second:
//! neither waits for the client, and the reader we keep means the client going away never turns
//! our writes into EPIPE (contract 6.3 keep-alive).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::IoError;

/// Where one output stream is written.
#[derive(Debug)]
pub struct OutputFifo {
    /// Non-blocking writer: a client that stops reading leaves its copy waiting on the IO thread
    /// (the container then blocks on its full pipe, as with Go); no other stream waits for it.
    pub writer: File,
    /// Our own reader on a fifo (never read; `None` for a plain file). Close it with the writer.
    pub keep_alive: Option<File>,
}

/// Where stdin is read from.
#[derive(Debug)]
pub struct InputFifo {
    /// Non-blocking reader (the IO thread waits for it to be readable).
    pub reader: File,
    /// Our own writer on a fifo, held until CloseIO so a client re-opening the fifo does not
    /// deliver EOF in between (`None` for a plain file).
    pub writer: Option<File>,
}

fn is_fifo(path: &Path) -> Result<bool, IoError> {
    let meta = std::fs::metadata(path).map_err(IoError::path("stat", path))?;
    Ok(meta.file_type().is_fifo())
}

fn open_nonblocking(path: &Path, read: bool) -> Result<File, IoError> {
    OpenOptions::new()
        .read(read)
        .write(!read)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(IoError::path(
            if read {
                "open fifo for reading"
            } else {
                "open fifo for writing"
            },
            path,
        ))
}

/// Open an output target. A fifo gets our keep-alive reader, then a writer (which therefore never
/// waits for the client); anything else is opened O_WRONLY|O_APPEND and must exist (Go does the same).
pub fn open_output(path: &Path) -> Result<OutputFifo, IoError> {
    if !is_fifo(path)? {
        let writer = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .map_err(IoError::path("open output file", path))?;
        return Ok(OutputFifo {
            writer,
            keep_alive: None,
        });
    }
    let keep_alive = open_nonblocking(path, true)?;
    let writer = open_nonblocking(path, false)?;
    Ok(OutputFifo {
        writer,
        keep_alive: Some(keep_alive),
    })
}

/// Open the stdin source: a non-blocking reader, plus (for a fifo) our held writer.
pub fn open_input(path: &Path) -> Result<InputFifo, IoError> {
    if !is_fifo(path)? {
        let reader = File::open(path).map_err(IoError::path("open input file", path))?;
        return Ok(InputFifo {
            reader,
            writer: None,
        });
    }
    let reader = open_nonblocking(path, true)?;
    let writer = open_nonblocking(path, false)?;
    Ok(InputFifo {
        reader,
        writer: Some(writer),
    })
}

/// Set or clear O_NONBLOCK on an open file description.
pub(crate) fn set_nonblocking(fd: impl AsFd, on: bool) -> io::Result<()> {
    let fd = fd.as_fd().as_raw_fd();
    // SAFETY: fcntl on a borrowed, open fd.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
