//! Occlum's `/dev/sgx` pseudo-device: the only code in the workspace that is `unsafe`.
//!
//! Inside an Occlum enclave, opening `/dev/sgx` gives the LibOS's SGX device. Two ioctls make a
//! DCAP quote: `SGXIOC_GET_DCAP_QUOTE_SIZE` (`_IOR('s', 7, u32)`) writes the quote size, and
//! `SGXIOC_GEN_DCAP_QUOTE` (`_IOWR('s', 8, arg)`) takes pointers to the 64-byte report data, to
//! the buffer size and to the buffer, creates the enclave's report for the quoting enclave and
//! fills the buffer with the quote (Occlum `src/libos/src/fs/dev_fs/dev_sgx/`). The argument is a
//! `#[repr(C)]` struct of three pointers, 24 bytes on x86-64, checked at compile time.
//!
//! Outside an enclave `/dev/sgx` does not exist (the host's devices are `/dev/sgx_enclave` and
//! `/dev/sgx/enclave`, which speak another protocol), so [`OcclumDevice::open`] fails with
//! [`DeviceError::Missing`] rather than issuing ioctls to something else.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

use super::{DeviceError, QuoteDevice};

/// Where Occlum exposes the device inside the enclave.
pub const DEFAULT_DEVICE_PATH: &str = "/dev/sgx";

const fn ioc(direction: u32, kind: u8, number: u8, size: usize) -> u32 {
    // Linux's _IOC layout, which Occlum copies: dir 2 bits | size 14 bits | type 8 | number 8.
    (direction << 30) | ((size as u32 & 0x3FFF) << 16) | ((kind as u32) << 8) | number as u32
}
const IOC_READ: u32 = 2;
const IOC_READ_WRITE: u32 = 3;

/// `_IOR('s', 7, u32)`.
pub const SGXIOC_GET_DCAP_QUOTE_SIZE: u32 = ioc(IOC_READ, b's', 7, std::mem::size_of::<u32>());
/// `_IOWR('s', 8, GenQuoteArg)`.
pub const SGXIOC_GEN_DCAP_QUOTE: u32 = ioc(IOC_READ_WRITE, b's', 8, std::mem::size_of::<GenQuoteArg>());

/// Occlum's `IoctlGenDCAPQuoteArg`.
#[repr(C)]
struct GenQuoteArg {
    report_data: *const [u8; 64],
    /// In: the buffer's size. Occlum does not write it back.
    quote_size: *mut u32,
    quote_buf: *mut u8,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<GenQuoteArg>() == 24);

/// The real device, inside an Occlum enclave.
#[derive(Debug)]
pub struct OcclumDevice {
    file: File,
}

impl OcclumDevice {
    /// Opens the device at `path` (normally [`DEFAULT_DEVICE_PATH`]).
    pub fn open(path: &Path) -> Result<Self, DeviceError> {
        match File::open(path) {
            Ok(file) => Ok(Self { file }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DeviceError::Missing(path.display().to_string())),
            Err(e) => Err(DeviceError::Io(format!("cannot open {}: {}", path.display(), e.kind()))),
        }
    }
}

fn last_error() -> DeviceError {
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EINVAL) {
        DeviceError::Invalid
    } else {
        DeviceError::Io(error.to_string())
    }
}

impl QuoteDevice for OcclumDevice {
    fn quote_size(&self) -> Result<u32, DeviceError> {
        let mut size: u32 = 0;
        // SAFETY: the request reads nothing and writes one u32 through the pointer, which points
        // to a live, aligned, writable u32 for the duration of the call.
        let result = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                SGXIOC_GET_DCAP_QUOTE_SIZE as _,
                std::ptr::from_mut(&mut size),
            )
        };
        if result < 0 {
            return Err(last_error());
        }
        Ok(size)
    }

    fn generate(&self, report_data: &[u8; 64], quote: &mut [u8]) -> Result<(), DeviceError> {
        let mut size = u32::try_from(quote.len()).map_err(|_| DeviceError::Io("quote buffer too large".into()))?;
        let mut arg = GenQuoteArg {
            report_data: std::ptr::from_ref(report_data),
            quote_size: std::ptr::from_mut(&mut size),
            quote_buf: quote.as_mut_ptr(),
        };
        // SAFETY: `arg` and everything it points to live until the call returns: the report data
        // (64 readable bytes), the size (a writable u32 equal to the buffer's length) and the
        // buffer (`size` writable bytes, exclusively borrowed). The device writes at most `size`
        // bytes into the buffer and nothing else.
        let result = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                SGXIOC_GEN_DCAP_QUOTE as _,
                std::ptr::from_mut(&mut arg),
            )
        };
        if result < 0 {
            return Err(last_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_occlum() {
        // The literal values in Occlum's `occlum_dcap.rs` and UID2's C++ (`enclave.md` §2.2).
        assert_eq!(SGXIOC_GET_DCAP_QUOTE_SIZE, 0x8004_7307);
        assert_eq!(SGXIOC_GEN_DCAP_QUOTE, 0xC018_7308);
        assert_eq!(SGXIOC_GEN_DCAP_QUOTE as i32, -1_072_139_512, "musl passes it as c_int");
    }

    #[test]
    fn a_missing_device_says_so() {
        let error = OcclumDevice::open(Path::new("/nonexistent/dev/sgx")).expect_err("no device");
        assert!(matches!(error, DeviceError::Missing(_)));
        assert!(error.to_string().contains("inside the Occlum enclave"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_the_device_answers_errors_not_quotes() {
        // A regular file rejects both ioctls (ENOTTY): an error, no quote, no crash.
        let device = OcclumDevice::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml").as_path())
            .expect("a file opens");
        assert!(matches!(device.quote_size(), Err(DeviceError::Io(_))));
        let mut buffer = vec![0u8; 16];
        assert!(device.generate(&[0u8; 64], &mut buffer).is_err());
        assert_eq!(buffer, vec![0u8; 16]);
    }
}
