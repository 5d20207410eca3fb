use super::*;

/// Builds a notification: the header with `kind`, `flags` and the total length, then `body`.
fn notification(kind: u16, flags: u16, body: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&kind.to_ne_bytes());
    bytes.extend_from_slice(&flags.to_ne_bytes());
    let len = u32::try_from(HEADER_LEN + body.len()).unwrap();
    bytes.extend_from_slice(&len.to_ne_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn assoc_change_bytes(state: u16, extra: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&state.to_ne_bytes());
    body.extend_from_slice(&0u16.to_ne_bytes());
    body.extend_from_slice(&10u16.to_ne_bytes());
    body.extend_from_slice(&5u16.to_ne_bytes());
    body.extend_from_slice(&77i32.to_ne_bytes());
    body.extend_from_slice(extra);
    notification(0x8001, 0, &body)
}

fn paddr_change_bytes(addr: &SocketAddr, state: i32) -> Vec<u8> {
    let mut body = addr::pack_addrs(&[*addr]);
    body.resize(128, 0);
    body.extend_from_slice(&state.to_ne_bytes());
    body.extend_from_slice(&2i32.to_ne_bytes());
    body.extend_from_slice(&9i32.to_ne_bytes());
    notification(0x8002, 0, &body)
}

#[test]
fn assoc_change_comm_up() {
    let parsed = Notification::parse(&assoc_change_bytes(0, &[1, 2])).unwrap();
    let Notification::AssocChange(change) = parsed else {
        panic!("expected an association change, got {parsed:?}");
    };
    assert_eq!(change.state, AssocChangeState::CommUp);
    assert_eq!(change.outbound_streams, 10);
    assert_eq!(change.inbound_streams, 5);
    assert_eq!(change.assoc_id, AssocId(77));
    assert_eq!(change.info, vec![1, 2]);
}

#[test]
fn assoc_change_states_map() {
    let cases = [
        (1, AssocChangeState::CommLost),
        (2, AssocChangeState::Restart),
        (3, AssocChangeState::ShutdownComplete),
        (4, AssocChangeState::CantStartAssoc),
        (9, AssocChangeState::Other(9)),
    ];
    for (raw, state) in cases {
        let Notification::AssocChange(change) =
            Notification::parse(&assoc_change_bytes(raw, &[])).unwrap()
        else {
            panic!("state {raw} did not parse as an association change");
        };
        assert_eq!(change.state, state, "sac_state {raw}");
    }
}

#[test]
fn peer_addr_change_reads_packed_fields() {
    for text in ["10.0.0.2:36412", "[fd00::2]:38412"] {
        let addr: SocketAddr = text.parse().unwrap();
        let bytes = paddr_change_bytes(&addr, 1);
        assert_eq!(bytes.len(), 148);
        let Notification::PeerAddrChange(change) = Notification::parse(&bytes).unwrap() else {
            panic!("expected a peer address change");
        };
        assert_eq!(change.address, Some(addr));
        assert_eq!(change.state, PeerAddrState::Unreachable);
        assert_eq!(change.error, 2);
        assert_eq!(change.assoc_id, AssocId(9));
    }
}

#[test]
fn peer_addr_states_map() {
    let addr: SocketAddr = "10.0.0.2:1".parse().unwrap();
    let cases = [
        (0, PeerAddrState::Available),
        (2, PeerAddrState::Removed),
        (3, PeerAddrState::Added),
        (4, PeerAddrState::MadePrimary),
        (5, PeerAddrState::Confirmed),
        (6, PeerAddrState::PotentiallyFailed),
        (-1, PeerAddrState::Other(-1)),
    ];
    for (raw, state) in cases {
        let Notification::PeerAddrChange(change) =
            Notification::parse(&paddr_change_bytes(&addr, raw)).unwrap()
        else {
            panic!("state {raw} did not parse as a peer address change");
        };
        assert_eq!(change.state, state, "spc_state {raw}");
    }
}

#[test]
fn remote_error_cause_is_big_endian() {
    let mut body = Vec::new();
    body.extend_from_slice(&[0x00, 0x0c]);
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&4i32.to_ne_bytes());
    body.extend_from_slice(b"cause");
    let Notification::RemoteError(error) =
        Notification::parse(&notification(0x8004, 0, &body)).unwrap()
    else {
        panic!("expected a remote error");
    };
    assert_eq!(error.error, 12);
    assert_eq!(error.assoc_id, AssocId(4));
    assert_eq!(error.data, b"cause");
}

#[test]
fn send_failed_event_carries_sndinfo_and_data() {
    let mut body = Vec::new();
    body.extend_from_slice(&5u32.to_ne_bytes());
    body.extend_from_slice(&3u16.to_ne_bytes());
    body.extend_from_slice(&1u16.to_ne_bytes());
    body.extend_from_slice(&60u32.to_be().to_ne_bytes());
    body.extend_from_slice(&1234u32.to_ne_bytes());
    body.extend_from_slice(&8i32.to_ne_bytes());
    body.extend_from_slice(&8i32.to_ne_bytes());
    body.extend_from_slice(b"lost");
    let parsed = Notification::parse(&notification(0x800d, 1, &body)).unwrap();
    let Notification::SendFailed(failed) = parsed else {
        panic!("expected a send failure");
    };
    assert!(failed.sent);
    assert_eq!(failed.error, 5);
    assert_eq!(failed.info.stream, 3);
    assert_eq!(failed.info.flags, SendFlags::UNORDERED);
    assert_eq!(failed.info.ppid, 60);
    assert_eq!(failed.info.context, 1234);
    assert_eq!(failed.assoc_id, AssocId(8));
    assert_eq!(failed.data, b"lost");
}

#[test]
fn old_send_failed_carries_sndrcvinfo() {
    let mut body = vec![0u8; 40];
    body[0..4].copy_from_slice(&6u32.to_ne_bytes());
    body[4..6].copy_from_slice(&2u16.to_ne_bytes());
    body[12..16].copy_from_slice(&18u32.to_be().to_ne_bytes());
    body[16..20].copy_from_slice(&99u32.to_ne_bytes());
    body[36..40].copy_from_slice(&3i32.to_ne_bytes());
    let parsed = Notification::parse(&notification(0x8003, 0, &body)).unwrap();
    let Notification::SendFailed(failed) = parsed else {
        panic!("expected a send failure");
    };
    assert!(!failed.sent);
    assert_eq!(failed.error, 6);
    assert_eq!(failed.info.stream, 2);
    assert_eq!(failed.info.ppid, 18);
    assert_eq!(failed.info.context, 99);
    assert_eq!(failed.assoc_id, AssocId(3));
    assert!(failed.data.is_empty());
}

#[test]
fn small_fixed_notifications_parse() {
    let shutdown = notification(0x8005, 0, &21i32.to_ne_bytes());
    assert_eq!(
        Notification::parse(&shutdown).unwrap(),
        Notification::Shutdown {
            assoc_id: AssocId(21)
        }
    );

    let dry = notification(0x8009, 0, &22i32.to_ne_bytes());
    assert_eq!(
        Notification::parse(&dry).unwrap(),
        Notification::SenderDry {
            assoc_id: AssocId(22)
        }
    );

    let mut adaptation = 0xabcdu32.to_ne_bytes().to_vec();
    adaptation.extend_from_slice(&23i32.to_ne_bytes());
    assert_eq!(
        Notification::parse(&notification(0x8007, 0, &adaptation)).unwrap(),
        Notification::AdaptationIndication {
            indication: 0xabcd,
            assoc_id: AssocId(23)
        }
    );
}

#[test]
fn partial_delivery_old_and_new_sizes() {
    let mut body = 0u32.to_ne_bytes().to_vec();
    body.extend_from_slice(&4i32.to_ne_bytes());
    let Notification::PartialDelivery(old) =
        Notification::parse(&notification(0x8006, 0, &body)).unwrap()
    else {
        panic!("expected a partial delivery event");
    };
    assert_eq!(old.assoc_id, AssocId(4));
    assert_eq!(old.stream, None);

    body.extend_from_slice(&7u32.to_ne_bytes());
    body.extend_from_slice(&8u32.to_ne_bytes());
    let Notification::PartialDelivery(new) =
        Notification::parse(&notification(0x8006, 0, &body)).unwrap()
    else {
        panic!("expected a partial delivery event");
    };
    assert_eq!(new.stream, Some(7));
    assert_eq!(new.seq, Some(8));
}

#[test]
fn auth_and_reset_events_parse() {
    let mut auth = Vec::new();
    auth.extend_from_slice(&1u16.to_ne_bytes());
    auth.extend_from_slice(&2u16.to_ne_bytes());
    auth.extend_from_slice(&1u32.to_ne_bytes());
    auth.extend_from_slice(&5i32.to_ne_bytes());
    assert_eq!(
        Notification::parse(&notification(0x8008, 0, &auth)).unwrap(),
        Notification::Authentication(AuthKeyEvent {
            key_number: 1,
            alt_key_number: 2,
            indication: 1,
            assoc_id: AssocId(5)
        })
    );

    let mut reset = 6i32.to_ne_bytes().to_vec();
    reset.extend_from_slice(&1u16.to_ne_bytes());
    reset.extend_from_slice(&4u16.to_ne_bytes());
    reset.push(0xee);
    assert_eq!(
        Notification::parse(&notification(0x800a, 2, &reset)).unwrap(),
        Notification::StreamReset(StreamReset {
            flags: 2,
            assoc_id: AssocId(6),
            streams: vec![1, 4]
        })
    );

    let mut assoc_reset = 7i32.to_ne_bytes().to_vec();
    assoc_reset.extend_from_slice(&100u32.to_ne_bytes());
    assoc_reset.extend_from_slice(&200u32.to_ne_bytes());
    assert_eq!(
        Notification::parse(&notification(0x800b, 4, &assoc_reset)).unwrap(),
        Notification::AssocReset(AssocReset {
            flags: 4,
            assoc_id: AssocId(7),
            local_tsn: 100,
            remote_tsn: 200
        })
    );

    let mut change = 8i32.to_ne_bytes().to_vec();
    change.extend_from_slice(&3u16.to_ne_bytes());
    change.extend_from_slice(&12u16.to_ne_bytes());
    assert_eq!(
        Notification::parse(&notification(0x800c, 0, &change)).unwrap(),
        Notification::StreamChange(StreamChange {
            flags: 0,
            assoc_id: AssocId(8),
            inbound_streams: 3,
            outbound_streams: 12
        })
    );
}

#[test]
fn unknown_type_keeps_its_bytes() {
    let parsed = Notification::parse(&notification(0x80ff, 3, &[1, 2, 3])).unwrap();
    assert_eq!(
        parsed,
        Notification::Unknown {
            kind: 0x80ff,
            flags: 3,
            data: vec![1, 2, 3]
        }
    );
    assert_eq!(parsed.assoc_id(), None);
}

#[test]
fn buffer_shorter_than_header_is_rejected() {
    assert_eq!(
        Notification::parse(&[1, 0x80, 0]),
        Err(NotificationError::NoHeader { len: 3 })
    );
}

#[test]
fn declared_length_beyond_buffer_is_rejected() {
    let mut bytes = assoc_change_bytes(0, &[]);
    bytes[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    assert!(matches!(
        Notification::parse(&bytes),
        Err(NotificationError::Truncated { kind: 0x8001, .. })
    ));
}

#[test]
fn declared_length_below_struct_is_rejected() {
    let addr: SocketAddr = "10.0.0.2:1".parse().unwrap();
    let mut bytes = paddr_change_bytes(&addr, 0);
    bytes[4..8].copy_from_slice(&140u32.to_ne_bytes());
    assert_eq!(
        Notification::parse(&bytes),
        Err(NotificationError::TooShort {
            kind: 0x8002,
            declared: 140,
            needed: 148
        })
    );
}

#[test]
fn trailing_bytes_past_declared_length_are_ignored() {
    let mut bytes = assoc_change_bytes(0, &[]);
    bytes.extend_from_slice(&[9; 12]);
    let Notification::AssocChange(change) = Notification::parse(&bytes).unwrap() else {
        panic!("expected an association change");
    };
    assert!(change.info.is_empty());
}

#[test]
fn every_prefix_of_every_type_is_handled() {
    let addr: SocketAddr = "[fd00::9]:1".parse().unwrap();
    let mut samples = vec![
        assoc_change_bytes(0, &[1, 2, 3]),
        paddr_change_bytes(&addr, 0),
    ];
    for kind in 0x8003..=0x800e_u16 {
        samples.push(notification(kind, 1, &[0x5a; 60]));
    }
    for sample in &samples {
        for cut in 0..=sample.len() {
            let mut prefix = sample[..cut].to_vec();
            // A prefix with a header declares its own length, as a hostile peer buffer would.
            if cut >= HEADER_LEN {
                prefix[4..8].copy_from_slice(&u32::try_from(cut).unwrap().to_ne_bytes());
            }
            let _ = Notification::parse(&prefix);
            if cut < sample.len() {
                assert!(
                    Notification::parse(&sample[..cut]).is_err(),
                    "prefix of {cut} bytes"
                );
            }
        }
    }
}

#[test]
fn event_kinds_match_kernel_values() {
    assert_eq!(Event::AssocChange.kind(), 0x8001);
    assert_eq!(Event::PeerAddrChange.kind(), 0x8002);
    assert_eq!(Event::Shutdown.kind(), 0x8005);
    assert_eq!(Event::SenderDry.kind(), 0x8009);
    assert_eq!(Event::SendFailedEvent.kind(), 0x800d);
    let kinds: Vec<u16> = Event::ALL.iter().map(|event| event.kind()).collect();
    assert_eq!(kinds, (0x8001..=0x800d).collect::<Vec<u16>>());
}

proptest::proptest! {
    /// Arbitrary bytes, as a hostile or corrupt buffer would be, parse or fail without a panic,
    /// and a parsed notification never claims more bytes than were given.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
        if let Ok(Notification::Unknown { data, .. }) = Notification::parse(&bytes) {
            proptest::prop_assert!(data.len() + HEADER_LEN <= bytes.len());
        }
    }

    /// A header with any type and a length within the buffer parses or fails without a panic.
    #[test]
    fn any_type_with_consistent_length_never_panics(
        kind in 0x8000u16..0x8010,
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
    ) {
        let bytes = notification(kind, 0, &body);
        let result = Notification::parse(&bytes);
        if body.len() >= 150 {
            proptest::prop_assert!(result.is_ok(), "{result:?}");
        }
    }
}
