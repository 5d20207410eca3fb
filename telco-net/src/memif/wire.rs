//! memif control messages, protocol version 2.0, as libmemif's `memif.h` lays them out.
//!
//! Every message is a 128-byte frame: the type as a host-order `u16` at offset 0, the packed
//! payload from offset 2, zeros after it. Decoding checks the frame length and the type; the
//! handshake checks the field values.

/// Size of every control message.
pub const MSG_SIZE: usize = 128;
/// Written at offset 0 of every ring; checked by the peer after mapping.
pub const COOKIE: u32 = 0x03E3_1F20;
/// Protocol version 2.0, `(2 << 8) | 0`.
pub const VERSION: u16 = 0x0200;
/// Largest ring size exponent (16384 descriptors).
pub const MAX_LOG2_RING_SIZE: u8 = 14;
/// Largest ring index per direction and region index that we announce (libmemif: 255).
pub const MAX_INDEX: u16 = 255;
/// Ring flag set by the reader of a ring that does not want eventfd signals.
pub const RING_FLAG_MASK_INT: u16 = 1;
/// Descriptor flag: the packet continues in the next descriptor.
pub const DESC_FLAG_NEXT: u16 = 1;
/// ADD_RING flag: the ring goes from client to server (libmemif's S2M, DPDK's C2S).
pub const ADD_RING_FLAG_C2S: u16 = 1;
/// Length of names and of the interface name in CONNECT/CONNECTED.
pub const NAME_LEN: usize = 32;
/// Length of the shared secret.
pub const SECRET_LEN: usize = 24;
/// Length of the DISCONNECT reason.
pub const REASON_LEN: usize = 96;

/// Interface mode carried in INIT (`memif_interface_mode_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InterfaceMode {
    /// Ethernet frames (0).
    Ethernet,
    /// IP packets without link header (1).
    Ip,
    /// Punt/inject (2).
    PuntInject,
}

impl InterfaceMode {
    fn code(self) -> u8 {
        match self {
            Self::Ethernet => 0,
            Self::Ip => 1,
            Self::PuntInject => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Ethernet),
            1 => Some(Self::Ip),
            2 => Some(Self::PuntInject),
            _ => None,
        }
    }
}

/// A decoded control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 1.
    Ack,
    /// Type 2, from the server: its name and limits.
    Hello {
        /// Server name.
        name: Vec<u8>,
        /// Lowest protocol version supported.
        min_version: u16,
        /// Highest protocol version supported.
        max_version: u16,
        /// Highest region index accepted.
        max_region: u16,
        /// Highest server-to-client ring index accepted.
        max_s2c_ring: u16,
        /// Highest client-to-server ring index accepted.
        max_c2s_ring: u16,
        /// Largest ring size exponent accepted.
        max_log2_ring_size: u8,
    },
    /// Type 3, from the client.
    Init {
        /// Protocol version the client speaks.
        version: u16,
        /// Interface id the client wants.
        id: u32,
        /// Interface mode, or the raw code if unknown.
        mode: Result<InterfaceMode, u8>,
        /// Shared secret, NUL padded.
        secret: [u8; SECRET_LEN],
        /// Client name.
        name: Vec<u8>,
    },
    /// Type 4, from the client, with the region fd.
    AddRegion {
        /// Region index, sequential from 0.
        index: u16,
        /// Region size in bytes.
        size: u64,
    },
    /// Type 5, from the client, with the ring's eventfd.
    AddRing {
        /// `ADD_RING_FLAG_C2S` for client-to-server rings.
        flags: u16,
        /// Ring index within its direction.
        index: u16,
        /// Region holding the ring.
        region: u16,
        /// Byte offset of the ring in the region.
        offset: u32,
        /// Ring size exponent.
        log2_ring_size: u8,
        /// Private header size; must be 0.
        private_hdr_size: u16,
    },
    /// Type 6, from the client.
    Connect {
        /// The client's interface name.
        if_name: Vec<u8>,
    },
    /// Type 7, from the server.
    Connected {
        /// The server's interface name.
        if_name: Vec<u8>,
    },
    /// Type 8, from either side.
    Disconnect {
        /// Reason code.
        code: u32,
        /// Reason text.
        reason: Vec<u8>,
    },
}

/// Why a frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is not 128 bytes.
    #[error("control message is {0} bytes, expected 128")]
    Length(usize),
    /// The type is not one of 1..=8.
    #[error("unknown control message type {0}")]
    Type(u16),
}

const P: usize = 2;

fn u16_at(frame: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([frame[at], frame[at + 1]])
}

fn u32_at(frame: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(frame[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(frame: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(frame[at..at + 8].try_into().expect("8 bytes"))
}

/// A fixed string up to its first NUL; a full-length string may have none.
fn string_at(frame: &[u8], at: usize, len: usize) -> Vec<u8> {
    let field = &frame[at..at + len];
    let end = field.iter().position(|b| *b == 0).unwrap_or(len);
    field[..end].to_vec()
}

fn put(frame: &mut [u8; MSG_SIZE], at: usize, bytes: &[u8]) {
    frame[at..at + bytes.len()].copy_from_slice(bytes);
}

/// Copies `s` into a fixed field, truncated to `len` bytes like `strlcpy` would not: libmemif
/// keeps a full-length string without NUL, and so do we.
fn put_string(frame: &mut [u8; MSG_SIZE], at: usize, len: usize, s: &[u8]) {
    let n = s.len().min(len);
    frame[at..at + n].copy_from_slice(&s[..n]);
}

impl Message {
    /// Encodes the message into a 128-byte frame.
    pub fn encode(&self) -> [u8; MSG_SIZE] {
        let mut f = [0u8; MSG_SIZE];
        let kind: u16 = match self {
            Self::Ack => 1,
            Self::Hello {
                name,
                min_version,
                max_version,
                max_region,
                max_s2c_ring,
                max_c2s_ring,
                max_log2_ring_size,
            } => {
                put_string(&mut f, P, NAME_LEN, name);
                put(&mut f, P + 32, &min_version.to_ne_bytes());
                put(&mut f, P + 34, &max_version.to_ne_bytes());
                put(&mut f, P + 36, &max_region.to_ne_bytes());
                put(&mut f, P + 38, &max_s2c_ring.to_ne_bytes());
                put(&mut f, P + 40, &max_c2s_ring.to_ne_bytes());
                f[P + 42] = *max_log2_ring_size;
                2
            }
            Self::Init {
                version,
                id,
                mode,
                secret,
                name,
            } => {
                put(&mut f, P, &version.to_ne_bytes());
                put(&mut f, P + 2, &id.to_ne_bytes());
                f[P + 6] = match mode {
                    Ok(mode) => mode.code(),
                    Err(code) => *code,
                };
                put(&mut f, P + 7, secret);
                put_string(&mut f, P + 31, NAME_LEN, name);
                3
            }
            Self::AddRegion { index, size } => {
                put(&mut f, P, &index.to_ne_bytes());
                put(&mut f, P + 2, &size.to_ne_bytes());
                4
            }
            Self::AddRing {
                flags,
                index,
                region,
                offset,
                log2_ring_size,
                private_hdr_size,
            } => {
                put(&mut f, P, &flags.to_ne_bytes());
                put(&mut f, P + 2, &index.to_ne_bytes());
                put(&mut f, P + 4, &region.to_ne_bytes());
                put(&mut f, P + 6, &offset.to_ne_bytes());
                f[P + 10] = *log2_ring_size;
                put(&mut f, P + 11, &private_hdr_size.to_ne_bytes());
                5
            }
            Self::Connect { if_name } => {
                put_string(&mut f, P, NAME_LEN, if_name);
                6
            }
            Self::Connected { if_name } => {
                put_string(&mut f, P, NAME_LEN, if_name);
                7
            }
            Self::Disconnect { code, reason } => {
                put(&mut f, P, &code.to_ne_bytes());
                put_string(&mut f, P + 4, REASON_LEN, reason);
                8
            }
        };
        f[..2].copy_from_slice(&kind.to_ne_bytes());
        f
    }

    /// Decodes a received frame.
    pub fn decode(frame: &[u8]) -> Result<Self, DecodeError> {
        if frame.len() != MSG_SIZE {
            return Err(DecodeError::Length(frame.len()));
        }
        let message = match u16_at(frame, 0) {
            1 => Self::Ack,
            2 => Self::Hello {
                name: string_at(frame, P, NAME_LEN),
                min_version: u16_at(frame, P + 32),
                max_version: u16_at(frame, P + 34),
                max_region: u16_at(frame, P + 36),
                max_s2c_ring: u16_at(frame, P + 38),
                max_c2s_ring: u16_at(frame, P + 40),
                max_log2_ring_size: frame[P + 42],
            },
            3 => Self::Init {
                version: u16_at(frame, P),
                id: u32_at(frame, P + 2),
                mode: InterfaceMode::from_code(frame[P + 6]).ok_or(frame[P + 6]),
                secret: frame[P + 7..P + 7 + SECRET_LEN]
                    .try_into()
                    .expect("24 bytes"),
                name: string_at(frame, P + 31, NAME_LEN),
            },
            4 => Self::AddRegion {
                index: u16_at(frame, P),
                size: u64_at(frame, P + 2),
            },
            5 => Self::AddRing {
                flags: u16_at(frame, P),
                index: u16_at(frame, P + 2),
                region: u16_at(frame, P + 4),
                offset: u32_at(frame, P + 6),
                log2_ring_size: frame[P + 10],
                private_hdr_size: u16_at(frame, P + 11),
            },
            6 => Self::Connect {
                if_name: string_at(frame, P, NAME_LEN),
            },
            7 => Self::Connected {
                if_name: string_at(frame, P, NAME_LEN),
            },
            8 => Self::Disconnect {
                code: u32_at(frame, P),
                reason: string_at(frame, P + 4, REASON_LEN),
            },
            other => return Err(DecodeError::Type(other)),
        };
        Ok(message)
    }

    /// Name of the message type, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ack => "ACK",
            Self::Hello { .. } => "HELLO",
            Self::Init { .. } => "INIT",
            Self::AddRegion { .. } => "ADD_REGION",
            Self::AddRing { .. } => "ADD_RING",
            Self::Connect { .. } => "CONNECT",
            Self::Connected { .. } => "CONNECTED",
            Self::Disconnect { .. } => "DISCONNECT",
        }
    }
}

/// Packs a secret string into the fixed field, or `None` if it is longer than 24 bytes.
pub fn pack_secret(secret: Option<&str>) -> Option<[u8; SECRET_LEN]> {
    let mut field = [0u8; SECRET_LEN];
    if let Some(secret) = secret {
        let bytes = secret.as_bytes();
        if bytes.len() > SECRET_LEN {
            return None;
        }
        field[..bytes.len()].copy_from_slice(bytes);
    }
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_ring_fields_sit_at_libmemif_offsets() {
        let frame = Message::AddRing {
            flags: 1,
            index: 0x0203,
            region: 0x0405,
            offset: 0x0a0b_0c0d,
            log2_ring_size: 10,
            private_hdr_size: 0,
        }
        .encode();
        assert_eq!(&frame[..2], &5u16.to_ne_bytes());
        assert_eq!(&frame[2..4], &1u16.to_ne_bytes());
        assert_eq!(&frame[4..6], &0x0203u16.to_ne_bytes());
        assert_eq!(&frame[6..8], &0x0405u16.to_ne_bytes());
        assert_eq!(&frame[8..12], &0x0a0b_0c0du32.to_ne_bytes());
        assert_eq!(frame[12], 10);
    }

    #[test]
    fn init_and_hello_round_trip() {
        let messages = [
            Message::Init {
                version: VERSION,
                id: 7,
                mode: Ok(InterfaceMode::Ethernet),
                secret: pack_secret(Some("s3cret")).unwrap(),
                name: b"telco".to_vec(),
            },
            Message::Hello {
                name: vec![b'x'; 32],
                min_version: VERSION,
                max_version: VERSION,
                max_region: 255,
                max_s2c_ring: 255,
                max_c2s_ring: 255,
                max_log2_ring_size: 14,
            },
            Message::AddRegion {
                index: 1,
                size: 1 << 33,
            },
            Message::Disconnect {
                code: 9,
                reason: b"bye".to_vec(),
            },
            Message::Connected {
                if_name: b"memif0".to_vec(),
            },
            Message::Ack,
        ];
        for message in messages {
            assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        }
    }

    #[test]
    fn init_mode_sits_after_version_and_id() {
        let frame = Message::Init {
            version: VERSION,
            id: 1,
            mode: Err(9),
            secret: [0; 24],
            name: vec![],
        }
        .encode();
        assert_eq!(frame[8], 9);
        assert!(matches!(
            Message::decode(&frame).unwrap(),
            Message::Init { mode: Err(9), .. }
        ));
    }

    #[test]
    fn short_frames_and_unknown_types_are_rejected() {
        assert_eq!(Message::decode(&[0u8; 64]), Err(DecodeError::Length(64)));
        let mut frame = [0u8; MSG_SIZE];
        frame[..2].copy_from_slice(&9u16.to_ne_bytes());
        assert_eq!(Message::decode(&frame), Err(DecodeError::Type(9)));
        assert_eq!(Message::decode(&[0u8; MSG_SIZE]), Err(DecodeError::Type(0)));
    }

    #[test]
    fn secrets_longer_than_the_field_are_rejected() {
        assert!(pack_secret(Some(&"a".repeat(25))).is_none());
        assert_eq!(pack_secret(None), Some([0; 24]));
    }
}
