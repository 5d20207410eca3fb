//! SCTP sockets against the kernel's stack: the vm tier, since the build machine's kernel has no
//! SCTP. One unit test checks the error a kernel without SCTP gives.

mod common;

/// Socket creation gives the no-SCTP error exactly when the stack is absent.
#[test]
fn socket_creation_matches_kernel_support() {
    let result = telco_sctp::SctpListener::bind(&["127.0.0.1:0".parse().unwrap()]);
    if std::path::Path::new("/proc/net/sctp").exists() {
        assert!(result.is_ok(), "SCTP is loaded but bind failed: {result:?}");
    } else {
        let error = result.expect_err("no /proc/net/sctp, yet an SCTP socket was created");
        assert!(
            matches!(error, telco_sctp::SctpError::NoKernelSupport { .. }),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "kernel has no SCTP support (CONFIG_IP_SCTP); load the sctp module"
        );
        assert!(!telco_sctp::probe().is_available());
    }
}

mod vm_tier {
    use std::net::SocketAddr;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use telco_sctp::notification::{AssocChangeState, PeerAddrState};
    use telco_sctp::{
        AssocId, AssocParams, AssocState, Event, InitMsg, Notification, OneToManySocket, PathState,
        PeerAddrParams, Received, RtoInfo, SctpBuilder, SctpOptions, SctpStream, SendFlags,
        SendInfo,
    };

    use crate::common::*;

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn probe_reports_available() {
        require_sctp();
        let listener = telco_sctp::SctpListener::bind(&[addr("127.0.0.1:0")]).unwrap();
        assert_ne!(bound_port(&listener), 0);
    }

    fn echo_case(ip: &str) {
        require_sctp();
        let builder = SctpBuilder::new()
            .init_msg(InitMsg::streams(8, 8))
            .nodelay(true);
        let (client, server) = loopback_pair(&builder, ip);
        let status = client.status(AssocId::FUTURE).unwrap();
        assert_eq!(status.state, AssocState::Established);
        assert_eq!(status.outbound_streams, 8);

        for (stream, ppid) in [(0u16, 18u32), (3, 60), (7, 46)] {
            let payload = format!("stream {stream} ppid {ppid}");
            let info = SendInfo::new(stream, ppid).with_flags(SendFlags::SACK_IMMEDIATELY);
            client.send(payload.as_bytes(), &info).unwrap();

            let mut seen = Vec::new();
            let request = recv_message(|| server.recv(), &mut seen);
            assert_eq!(request.data, payload.as_bytes());
            assert_eq!(request.stream(), stream);
            assert_eq!(request.ppid(), ppid);
            assert_eq!(request.info.unwrap().assoc_id, server.assoc_id());
            server
                .send(
                    &request.data,
                    &SendInfo::new(request.stream(), request.ppid()),
                )
                .unwrap();

            let reply = recv_message(|| client.recv(), &mut seen);
            assert_eq!(reply.data, payload.as_bytes());
            assert_eq!(reply.stream(), stream);
            assert_eq!(reply.ppid(), ppid);
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn echo_preserves_stream_and_ppid_ipv4() {
        echo_case("127.0.0.1");
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn echo_preserves_stream_and_ppid_ipv6() {
        echo_case("::1");
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn unordered_message_is_flagged() {
        require_sctp();
        let (client, server) = loopback_pair(&SctpBuilder::new(), "127.0.0.1");
        client
            .send(b"u", &SendInfo::new(1, 5).with_flags(SendFlags::UNORDERED))
            .unwrap();
        let message = recv_message(|| server.recv(), &mut Vec::new());
        let info = message.info.unwrap();
        assert!(info.flags.contains(SendFlags::UNORDERED));
        assert_eq!(info.ssn, 0);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn stream_beyond_negotiated_count_is_rejected() {
        require_sctp();
        let builder = SctpBuilder::new().init_msg(InitMsg::streams(4, 4));
        let (client, _server) = loopback_pair(&builder, "127.0.0.1");
        let error = client.send(b"x", &SendInfo::new(4, 0)).unwrap_err();
        assert_eq!(error.io_error().unwrap().raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn comm_up_reports_negotiated_streams() {
        require_sctp();
        let server_builder = builder_with_events().init_msg(InitMsg::streams(5, 3));
        let listener = server_builder.listen(&[addr("127.0.0.1:0")]).unwrap();
        let port = bound_port(&listener);
        let client = SctpBuilder::new()
            .init_msg(InitMsg::streams(10, 10))
            .connect(&[addr(&format!("127.0.0.1:{port}"))], &[])
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let Notification::AssocChange(change) = recv_notification(|| server.recv()) else {
            panic!("expected an association change first");
        };
        assert_eq!(change.state, AssocChangeState::CommUp);
        // The server asked for 5 outbound streams and accepts 3 inbound; the client asked
        // for 10 of each.
        assert_eq!(change.outbound_streams, 5);
        assert_eq!(change.inbound_streams, 3);
        assert_eq!(change.assoc_id, server.assoc_id());
        drop(client);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn nxtinfo_is_delivered_when_asked() {
        require_sctp();
        let builder = SctpBuilder::new().recv_nxtinfo(true);
        let (client, server) = loopback_pair(&builder, "127.0.0.1");
        client.send(b"first", &SendInfo::new(0, 1)).unwrap();
        client.send(b"second!", &SendInfo::new(1, 2)).unwrap();
        // Wait until both are queued, so the first carries information on the second.
        std::thread::sleep(Duration::from_millis(300));
        let first = recv_message(|| server.recv(), &mut Vec::new());
        let next = first.next.expect("SCTP_NXTINFO on the first message");
        assert_eq!(next.stream, 1);
        assert_eq!(next.ppid, 2);
        assert_eq!(next.length, 7);
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn options_round_trip() {
        require_sctp();
        let (client, _server) = loopback_pair(&SctpBuilder::new(), "127.0.0.1");
        let assoc = client.assoc_id();

        client
            .set_rto_info(assoc, RtoInfo::new(200, 100, 1000))
            .unwrap();
        // Linux stores RTOs in jiffies; multiples of 4 ms survive at any HZ of 250 or more.
        assert_eq!(
            client.rto_info(assoc).unwrap(),
            RtoInfo::new(200, 100, 1000)
        );

        client
            .set_assoc_params(assoc, AssocParams::max_retrans(7))
            .unwrap();
        let params = client.assoc_params(assoc).unwrap();
        assert_eq!(params.max_retrans, 7);
        assert_eq!(params.peer_destinations, 1);

        let peer = client.peer_addrs(assoc).unwrap()[0];
        client
            .set_peer_addr_params(
                PeerAddrParams::new(assoc, Some(peer))
                    .with_heartbeat(1500)
                    .with_path_max_retrans(3),
            )
            .unwrap();
        let path = client.peer_addr_params(assoc, Some(peer)).unwrap();
        assert_eq!(path.hb_interval_ms, 1500);
        assert_eq!(path.path_max_retrans, 3);

        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());

        client
            .set_default_send_info(SendInfo::new(2, 60).with_assoc_id(assoc))
            .unwrap();
        let default = client.default_send_info(assoc).unwrap();
        assert_eq!((default.stream, default.ppid), (2, 60));

        client.set_max_seg(assoc, 1000).unwrap();
        let max_seg = client.max_seg(assoc).unwrap();
        assert!(max_seg > 0, "SCTP_MAXSEG {max_seg}");
        assert!(max_seg <= 1000, "SCTP_MAXSEG {max_seg}");

        let info = client.peer_addr_info(assoc, peer).unwrap();
        assert_eq!(info.address, Some(peer));
        assert_eq!(info.state, PathState::Active);
        assert!(info.mtu > 0);

        let status = client.status(assoc).unwrap();
        assert_eq!(status.primary.address, Some(peer));
        assert_eq!(client.primary_addr(assoc).unwrap(), Some(peer));

        client.subscribe(Event::SenderDry, assoc).unwrap();
        assert!(client.is_subscribed(Event::SenderDry, assoc).unwrap());
        client.unsubscribe(Event::SenderDry, assoc).unwrap();
        assert!(!client.is_subscribed(Event::SenderDry, assoc).unwrap());
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn default_send_info_applies_to_plain_send() {
        require_sctp();
        let (client, server) = loopback_pair(&SctpBuilder::new(), "127.0.0.1");
        client
            .set_default_send_info(SendInfo::new(3, 27).with_assoc_id(client.assoc_id()))
            .unwrap();
        client.send_default(b"x2ap").unwrap();
        let message = recv_message(|| server.recv(), &mut Vec::new());
        assert_eq!((message.stream(), message.ppid()), (3, 27));
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn bindx_adds_and_removes_local_addresses() {
        require_sctp();
        let listener = SctpBuilder::new().listen(&[addr("127.0.0.1:0")]).unwrap();
        let port = bound_port(&listener);
        let second = addr(&format!("127.0.0.2:{port}"));
        listener.bindx_add(&[second]).unwrap();
        let bound = listener.bound_addrs().unwrap();
        assert!(bound.contains(&second), "{bound:?}");
        assert_eq!(bound.len(), 2);

        listener.bindx_remove(&[second]).unwrap();
        let bound = listener.bound_addrs().unwrap();
        assert_eq!(bound, vec![addr(&format!("127.0.0.1:{port}"))]);

        let error = listener
            .bindx_remove(&[addr(&format!("127.0.0.1:{port}"))])
            .unwrap_err();
        assert!(
            error.io_error().is_some(),
            "removing the last address must fail"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn connectx_returns_assoc_id_with_two_peer_addresses() {
        require_sctp();
        let server = OneToManySocket::bind(&[addr("127.0.0.1:0"), addr("127.0.0.3:0")]);
        // Port 0 on the second address means the port bound by the first.
        let server = server.unwrap();
        let port = server.local_addrs(AssocId::FUTURE).unwrap()[0].port();
        let peers = [
            addr(&format!("127.0.0.1:{port}")),
            addr(&format!("127.0.0.3:{port}")),
        ];
        let client = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        let assoc = client.connectx(&peers).unwrap();
        assert!(assoc.0 > AssocId::ALL.0, "assoc id {assoc}");
        let mut listed = client.peer_addrs(assoc).unwrap();
        listed.sort();
        assert_eq!(listed, peers);
        assert!(!client.local_addrs(assoc).unwrap().is_empty());
        assert_eq!(client.assoc_ids().unwrap(), vec![assoc]);

        client.set_primary_addr(assoc, peers[1]).unwrap();
        assert_eq!(client.primary_addr(assoc).unwrap(), Some(peers[1]));
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn one_to_many_serves_fifty_associations() {
        require_sctp();
        let server = builder_with_events()
            .backlog(64)
            .one_to_many(&[addr("127.0.0.1:0")])
            .unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let port = server.local_addrs(AssocId::FUTURE).unwrap()[0].port();
        let target = addr(&format!("127.0.0.1:{port}"));

        let clients: Vec<SctpStream> = (0..50)
            .map(|_| {
                let client = SctpStream::connect(&[target]).unwrap();
                client.set_read_timeout(Some(TIMEOUT)).unwrap();
                client
            })
            .collect();
        for (i, client) in clients.iter().enumerate() {
            let stream = u16::try_from(i % 10).unwrap();
            client
                .send(format!("client {i}").as_bytes(), &SendInfo::new(stream, 60))
                .unwrap();
        }

        let mut comm_up = 0;
        let mut echoed = 0;
        while echoed < clients.len() {
            match server.recv().unwrap() {
                Received::Message(message) => {
                    let info = message.info.unwrap();
                    let reply = SendInfo::new(info.stream, info.ppid).with_assoc_id(info.assoc_id);
                    server.send(&message.data, &reply).unwrap();
                    echoed += 1;
                }
                Received::Notification(Notification::AssocChange(change)) => {
                    assert_eq!(change.state, AssocChangeState::CommUp);
                    comm_up += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(comm_up, 50);
        assert_eq!(server.assoc_ids().unwrap().len(), 50);

        for (i, client) in clients.iter().enumerate() {
            let reply = recv_message(|| client.recv(), &mut Vec::new());
            assert_eq!(reply.data, format!("client {i}").as_bytes());
            assert_eq!(usize::from(reply.stream()), i % 10);
            assert_eq!(reply.ppid(), 60);
        }
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn one_to_many_send_to_sets_up_association() {
        require_sctp();
        let server = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let port = server.local_addrs(AssocId::FUTURE).unwrap()[0].port();
        let client = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client
            .send_to(
                b"implicit",
                addr(&format!("127.0.0.1:{port}")),
                &SendInfo::new(0, 3),
            )
            .unwrap();
        let message = recv_message(|| server.recv(), &mut Vec::new());
        assert_eq!(message.data, b"implicit");
        assert_eq!(message.ppid(), 3);
        assert_eq!(
            message.from.map(|from| from.ip()),
            Some("127.0.0.1".parse().unwrap())
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn peeloff_moves_association_to_own_socket() {
        require_sctp();
        let server = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let port = server.local_addrs(AssocId::FUTURE).unwrap()[0].port();
        let client = SctpStream::connect(&[addr(&format!("127.0.0.1:{port}"))]).unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.send(b"before", &SendInfo::new(0, 1)).unwrap();

        let first = recv_message(|| server.recv(), &mut Vec::new());
        let assoc = first.info.unwrap().assoc_id;
        let peeled = server.peeloff(assoc).unwrap();
        peeled.set_read_timeout(Some(TIMEOUT)).unwrap();
        assert_eq!(peeled.assoc_id(), assoc);
        assert!(server.assoc_ids().unwrap().is_empty());

        peeled.send(b"from peeled", &SendInfo::new(0, 2)).unwrap();
        let reply = recv_message(|| client.recv(), &mut Vec::new());
        assert_eq!(reply.data, b"from peeled");

        client.send(b"after", &SendInfo::new(0, 1)).unwrap();
        let after = recv_message(|| peeled.recv(), &mut Vec::new());
        assert_eq!(after.data, b"after");
    }

    /// Raises the send buffer past `net.core.wmem_max` (`SO_SNDBUFFORCE`, root only): Linux
    /// rejects a message larger than the send buffer with `EMSGSIZE`.
    fn force_send_buffer(stream: &SctpStream, bytes: i32) {
        use std::os::fd::AsRawFd;
        // SAFETY: the option value is a live `c_int` whose size is passed with it.
        let ret = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDBUFFORCE,
                (&raw const bytes).cast(),
                4,
            )
        };
        assert_eq!(
            ret,
            0,
            "SO_SNDBUFFORCE: {}",
            std::io::Error::last_os_error()
        );
    }

    fn large_payload() -> Vec<u8> {
        (0..1 << 20).map(|i: u32| (i % 251) as u8).collect()
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn one_mib_message_arrives_whole() {
        require_sctp();
        let (client, server) = loopback_pair(&SctpBuilder::new(), "127.0.0.1");
        server.set_partial_delivery_point(16 << 10).unwrap();
        force_send_buffer(&client, 4 << 20);
        let payload = large_payload();
        let sender = std::thread::spawn(move || {
            client.send(&payload, &SendInfo::new(1, 60)).unwrap();
            client
        });
        let message = recv_message(|| server.recv(), &mut Vec::new());
        let _client = sender.join().unwrap();
        assert_eq!(message.data.len(), 1 << 20);
        assert!(message.data == large_payload(), "payload differs");
        assert_eq!((message.stream(), message.ppid()), (1, 60));
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn one_mib_message_arrives_in_marked_parts() {
        require_sctp();
        let (client, server) = loopback_pair(&SctpBuilder::new(), "127.0.0.1");
        force_send_buffer(&client, 4 << 20);
        let payload = large_payload();
        let sender = std::thread::spawn(move || {
            client.send(&payload, &SendInfo::new(2, 18)).unwrap();
            client
        });
        let mut buf = vec![0u8; 64 << 10];
        let mut received = Vec::new();
        let mut parts = 0;
        loop {
            let part = server.recv_part(&mut buf).unwrap();
            assert!(!part.notification);
            assert_eq!(part.info.unwrap().stream, 2);
            received.extend_from_slice(&buf[..part.len]);
            parts += 1;
            if part.complete {
                break;
            }
        }
        let _client = sender.join().unwrap();
        assert!(
            parts >= 16,
            "{parts} parts for 1 MiB through a 64 KiB buffer"
        );
        assert!(received == large_payload(), "payload differs");
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn oversized_message_is_rejected_then_skipped() {
        require_sctp();
        let (client, server) = loopback_pair(&SctpBuilder::new(), "127.0.0.1");
        server.set_max_message_size(100 << 10);
        force_send_buffer(&client, 4 << 20);
        let payload = large_payload();
        let sender = std::thread::spawn(move || {
            client.send(&payload, &SendInfo::new(0, 0)).unwrap();
            client.send(b"small", &SendInfo::new(0, 0)).unwrap();
            client
        });
        let error = server.recv().unwrap_err();
        assert!(
            matches!(error, telco_sctp::SctpError::MessageTooLarge { limit } if limit == 100 << 10),
            "{error:?}"
        );
        let next = recv_message(|| server.recv(), &mut Vec::new());
        assert_eq!(next.data, b"small");
        let _client = sender.join().unwrap();
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn abort_is_reported_as_comm_lost() {
        require_sctp();
        let (client, server) = loopback_pair(&builder_with_events(), "127.0.0.1");
        let Notification::AssocChange(up) = recv_notification(|| server.recv()) else {
            panic!("expected COMM_UP");
        };
        assert_eq!(up.state, AssocChangeState::CommUp);

        client.abort().unwrap();
        let Notification::AssocChange(lost) = recv_notification(|| server.recv()) else {
            panic!("expected COMM_LOST");
        };
        assert_eq!(lost.state, AssocChangeState::CommLost);
        assert_eq!(lost.assoc_id, server.assoc_id());
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn abort_reason_reaches_peer() {
        require_sctp();
        let server = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let port = server.local_addrs(AssocId::FUTURE).unwrap()[0].port();
        let client = builder_with_events()
            .connect(&[addr(&format!("127.0.0.1:{port}"))], &[])
            .unwrap();
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        client.send(b"hello", &SendInfo::new(0, 0)).unwrap();
        let hello = recv_message(|| server.recv(), &mut Vec::new());

        server
            .abort(hello.info.unwrap().assoc_id, b"test abort")
            .unwrap();
        let lost = loop {
            if let Notification::AssocChange(change) = recv_notification(|| client.recv())
                && change.state == AssocChangeState::CommLost
            {
                break change;
            }
        };
        // sac_info carries the ABORT chunk, whose user-initiated cause contains the reason.
        let reason = b"test abort";
        assert!(
            lost.info
                .windows(reason.len())
                .any(|window| window == reason),
            "ABORT chunk {:?}",
            lost.info
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn graceful_shutdown_is_reported() {
        require_sctp();
        let (client, server) = loopback_pair(&builder_with_events(), "127.0.0.1");
        let Notification::AssocChange(up) = recv_notification(|| server.recv()) else {
            panic!("expected COMM_UP");
        };
        assert_eq!(up.state, AssocChangeState::CommUp);

        client.send(b"last words", &SendInfo::new(0, 0)).unwrap();
        client.shutdown().unwrap();
        let message = recv_message(|| server.recv(), &mut Vec::new());
        assert_eq!(message.data, b"last words");
        assert_eq!(
            recv_notification(|| server.recv()),
            Notification::Shutdown {
                assoc_id: server.assoc_id()
            }
        );
        // After SHUTDOWN the server's side completes and then reads end of file.
        let mut after = Vec::new();
        loop {
            match server.recv().unwrap() {
                Received::Eof => break,
                Received::Notification(notification) => after.push(notification),
                other => panic!("unexpected {other:?} after SHUTDOWN"),
            }
        }
        assert!(
            after.iter().all(|notification| matches!(notification,
                Notification::AssocChange(change) if change.state == AssocChangeState::ShutdownComplete)),
            "{after:?}"
        );

        // The client sees the association end with SHUTDOWN_COMP.
        let mut states = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            match client.recv().unwrap() {
                Received::Notification(Notification::AssocChange(change)) => {
                    states.push(change.state);
                    if change.state == AssocChangeState::ShutdownComplete {
                        break;
                    }
                }
                Received::Eof => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(
            states.contains(&AssocChangeState::ShutdownComplete),
            "{states:?}"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn multihoming_survives_primary_path_cut() {
        require_sctp();
        let a = Netns::new("a");
        let b = Netns::new("b");
        a.ip(&[
            "link", "add", "a1", "type", "veth", "peer", "name", "b1", "netns", &b.name,
        ]);
        a.ip(&[
            "link", "add", "a2", "type", "veth", "peer", "name", "b2", "netns", &b.name,
        ]);
        for (ns, dev, ip) in [
            (&a, "a1", "10.201.1.1/24"),
            (&a, "a2", "10.201.2.1/24"),
            (&b, "b1", "10.201.1.2/24"),
            (&b, "b2", "10.201.2.2/24"),
        ] {
            ns.ip(&["addr", "add", ip, "dev", dev]);
            ns.ip(&["link", "set", dev, "up"]);
        }

        // Fast failure detection: heartbeats every 100 ms, one retransmission per path.
        let builder = builder_with_events()
            .rto_info(RtoInfo::new(200, 100, 400))
            .nodelay(true);
        let tune = |socket: &dyn SctpOptions| {
            socket
                .set_peer_addr_params(
                    PeerAddrParams::new(AssocId::FUTURE, None)
                        .with_heartbeat(100)
                        .with_path_max_retrans(1),
                )
                .unwrap();
        };
        let b_addrs = [addr("10.201.1.2:5000"), addr("10.201.2.2:5000")];
        let a_addrs = [addr("10.201.1.1:0"), addr("10.201.2.1:0")];

        let listener = b.enter(|| builder.listen(&b_addrs).unwrap());
        tune(&listener);
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            loop {
                match stream.recv() {
                    Ok(Received::Message(message)) => {
                        let reply = SendInfo::new(message.stream(), message.ppid());
                        stream.send(&message.data, &reply).unwrap();
                    }
                    Ok(Received::Notification(_)) => {}
                    Ok(_) | Err(_) => return,
                }
            }
        });

        let client = a.enter(|| builder.connect(&b_addrs, &a_addrs).unwrap());
        tune(&client);
        client.set_read_timeout(Some(TIMEOUT)).unwrap();
        let assoc = client.assoc_id();
        let mut peers = client.peer_addrs(assoc).unwrap();
        peers.sort();
        assert_eq!(peers, b_addrs);
        client.set_primary_addr(assoc, b_addrs[0]).unwrap();

        let mut seen = Vec::new();
        client.send(b"before cut", &SendInfo::new(0, 60)).unwrap();
        assert_eq!(
            recv_message(|| client.recv(), &mut seen).data,
            b"before cut"
        );

        a.ip(&["link", "set", "a1", "down"]);
        for i in 0..5 {
            let payload = format!("after cut {i}");
            client
                .send(payload.as_bytes(), &SendInfo::new(0, 60))
                .unwrap();
            let reply = recv_message(|| client.recv(), &mut seen);
            assert_eq!(reply.data, payload.as_bytes());
        }

        // Wait for the heartbeats to declare the cut path unreachable, if they have not yet.
        let deadline = Instant::now() + TIMEOUT;
        let unreachable = |seen: &[Notification]| {
            seen.iter().any(|notification| {
                matches!(notification, Notification::PeerAddrChange(change)
                    if change.address == Some(b_addrs[0])
                        && change.state == PeerAddrState::Unreachable)
            })
        };
        while !unreachable(&seen) && Instant::now() < deadline {
            seen.push(recv_notification(|| client.recv()));
        }
        assert!(
            unreachable(&seen),
            "no SCTP_ADDR_UNREACHABLE for {}: {seen:?}",
            b_addrs[0]
        );
        let path = client.peer_addr_info(assoc, b_addrs[0]).unwrap();
        assert_eq!(path.state, PathState::Inactive);
        let status = client.status(assoc).unwrap();
        assert_eq!(status.state, AssocState::Established);

        client.shutdown().unwrap();
        server.join().unwrap();
    }

    /// Runs a peer tool, waiting at most `timeout`, and returns its stdout.
    fn run_tool(mut command: Command, stdin: Option<&str>, timeout: Duration) -> String {
        use std::io::Write;
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| panic!("failed to start {command:?}: {error}"));
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        let deadline = Instant::now() + timeout;
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn sctp_darn_receives_our_messages() {
        require_sctp();
        let port = 24001;
        let mut command = Command::new("sctp_darn");
        command.args(["-H", "127.0.0.1", "-P", &port.to_string(), "-l"]);
        let listener = std::thread::spawn(move || run_tool(command, None, Duration::from_secs(8)));
        std::thread::sleep(Duration::from_secs(1));

        let client = SctpStream::connect(&[addr(&format!("127.0.0.1:{port}"))]).unwrap();
        // sctp_darn writes to a pipe through a full stdio buffer that is lost when it is
        // killed, so send enough to flush it several times.
        let mut payload = b"hello-from-telco ".repeat(30);
        payload.push(b'\n');
        for _ in 0..20 {
            client.send(&payload, &SendInfo::new(0, 18)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        drop(client);

        let output = listener.join().unwrap();
        assert!(
            output.contains("hello-from-telco"),
            "sctp_darn output:\n{output}"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn we_receive_from_sctp_darn() {
        require_sctp();
        let server = OneToManySocket::bind(&[addr("127.0.0.1:24002")]).unwrap();
        server.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut command = Command::new("sctp_darn");
        command.args([
            "-H",
            "127.0.0.1",
            "-P",
            "24003",
            "-h",
            "127.0.0.1",
            "-p",
            "24002",
            "-s",
        ]);
        let sender = std::thread::spawn(move || {
            run_tool(command, Some("hello-from-darn\n"), Duration::from_secs(8))
        });
        let message = recv_message(|| server.recv(), &mut Vec::new());
        let output = sender.join().unwrap();
        let text = String::from_utf8_lossy(&message.data);
        assert!(
            text.contains("hello-from-darn"),
            "received {text:?}; sctp_darn:\n{output}"
        );
        assert_eq!(message.from, Some(addr("127.0.0.1:24003")));
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn we_receive_from_sctp_test() {
        require_sctp();
        let server = SctpBuilder::new()
            .listen(&[addr("127.0.0.1:24004")])
            .unwrap();
        let mut command = Command::new("sctp_test");
        command.args([
            "-H",
            "127.0.0.1",
            "-P",
            "24005",
            "-h",
            "127.0.0.1",
            "-p",
            "24004",
            "-s",
            "-T",
            "-c",
            "4",
            "-x",
            "1",
        ]);
        let sender = std::thread::spawn(move || run_tool(command, None, Duration::from_secs(20)));

        let (stream, _) = server.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut sizes = Vec::new();
        while let Ok(Received::Message(message)) = stream.recv() {
            sizes.push(message.data.len());
            if sizes.len() == 10 {
                break;
            }
        }
        let output = sender.join().unwrap();
        // The default order pattern sends unordered, so only the set of sizes is fixed.
        sizes.sort_unstable();
        // Test case 4 sends 1, 1000, 2000, 3000, 5000, 10000, 15000, 20000, 25000 and 32768
        // bytes.
        assert_eq!(
            sizes,
            vec![1, 1000, 2000, 3000, 5000, 10000, 15000, 20000, 25000, 32768],
            "sctp_test:\n{output}"
        );
    }

    #[test]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    fn sctp_test_server_receives_from_us() {
        require_sctp();
        let port = 24006;
        let mut command = Command::new("sctp_test");
        command.args(["-H", "127.0.0.1", "-P", &port.to_string(), "-l", "-d", "2"]);
        let listener = std::thread::spawn(move || run_tool(command, None, Duration::from_secs(8)));
        std::thread::sleep(Duration::from_secs(1));
        let client = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        let target: SocketAddr = addr(&format!("127.0.0.1:{port}"));
        let assoc = client.connectx(&[target]).unwrap();
        for _ in 0..3 {
            client
                .send(
                    b"telco-to-sctp_test",
                    &SendInfo::new(0, 0).with_assoc_id(assoc),
                )
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(500));
        drop(client);
        let output = listener.join().unwrap();
        assert!(
            output.matches("recvmsg").count() >= 3 || output.contains("telco-to-sctp_test"),
            "sctp_test output:\n{output}"
        );
    }
}
