//! The part of the i8042 keyboard controller that a guest without ACPI uses to reset: the
//! `0xfe` pulse-reset command on port 0x64.
//!
//! Reads of the status port return 0x01 (output buffer full), which ends the kernel's wait for
//! the controller at once; 0xff would keep it polling 65,536 times, each a VM exit.

/// Data port.
pub(crate) const DATA_PORT: u16 = 0x60;
/// Status (read) and command (write) port.
pub(crate) const COMMAND_PORT: u16 = 0x64;
const STATUS_OUTPUT_FULL: u8 = 0x01;
const CMD_RESET_CPU: u8 = 0xfe;

/// What an i8042 write asks of the VMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum I8042Action {
    None,
    Reset,
}

pub(crate) fn read(port: u16) -> u8 {
    match port {
        COMMAND_PORT => STATUS_OUTPUT_FULL,
        _ => 0,
    }
}

pub(crate) fn write(port: u16, value: u8) -> I8042Action {
    if port == COMMAND_PORT && value == CMD_RESET_CPU {
        I8042Action::Reset
    } else {
        I8042Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_command_requests_reset() {
        assert_eq!(write(COMMAND_PORT, 0xfe), I8042Action::Reset);
        assert_eq!(write(COMMAND_PORT, 0xad), I8042Action::None);
        assert_eq!(write(DATA_PORT, 0xfe), I8042Action::None);
    }

    #[test]
    fn status_reads_output_full() {
        assert_eq!(read(COMMAND_PORT), 0x01);
    }
}
