//! The tokio sockets against the kernel's stack (vm tier).

#![cfg(feature = "tokio")]

mod common;

mod vm_tier {
    use std::future::poll_fn;
    use std::time::Duration;

    use telco_sctp::notification::AssocChangeState;
    use telco_sctp::tokio::{OneToManySocket, SctpListener, SctpStream};
    use telco_sctp::{
        AssocId, Event, InitMsg, Notification, Received, SctpBuilder, SctpOptions, SendInfo,
    };
    use tokio::time::timeout;

    use crate::common::{addr, require_sctp};

    const WAIT: Duration = Duration::from_secs(30);

    async fn message(stream: &SctpStream) -> telco_sctp::Message {
        loop {
            match timeout(WAIT, stream.recv()).await.unwrap().unwrap() {
                Received::Message(message) => return message,
                Received::Notification(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    async fn async_echo_keeps_stream_and_ppid() {
        require_sctp();
        let listener = SctpListener::bind(&[addr("127.0.0.1:0")]).unwrap();
        let target = listener.get_ref().bound_addrs().unwrap()[0];
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            for _ in 0..3 {
                let request = message(&stream).await;
                let reply = SendInfo::new(request.stream(), request.ppid());
                stream.send(&request.data, &reply).await.unwrap();
            }
        });

        let builder = SctpBuilder::new().init_msg(InitMsg::streams(8, 8));
        let client = SctpStream::connect_with(&builder, &[target], &[])
            .await
            .unwrap();
        assert!(client.assoc_id().0 >= 0);
        for (stream, ppid) in [(0u16, 18u32), (5, 60), (7, 3)] {
            client
                .send(b"async", &SendInfo::new(stream, ppid))
                .await
                .unwrap();
            let echo = message(&client).await;
            assert_eq!(echo.data, b"async");
            assert_eq!((echo.stream(), echo.ppid()), (stream, ppid));
        }
        server.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    async fn cancelled_recv_loses_no_parts() {
        require_sctp();
        let listener = SctpListener::bind(&[addr("127.0.0.1:0")]).unwrap();
        let target = listener.get_ref().bound_addrs().unwrap()[0];
        let client = SctpStream::connect(&[target]).await.unwrap();
        // Linux rejects a message larger than the send buffer with EMSGSIZE.
        client
            .get_ref()
            .as_socket()
            .set_send_buffer_size(1 << 20)
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        server.set_partial_delivery_point(4096).unwrap();

        // Cancel receives repeatedly while a 256 KiB message trickles in.
        let payload: Vec<u8> = (0..256 << 10).map(|i: u32| (i % 253) as u8).collect();
        let expected = payload.clone();
        let sender = tokio::spawn(async move {
            client.send(&payload, &SendInfo::new(0, 0)).await.unwrap();
            client
        });
        let mut cancelled = 0;
        let whole = loop {
            match timeout(Duration::from_micros(50), server.recv()).await {
                Ok(result) => break result.unwrap(),
                Err(_) => cancelled += 1,
            }
        };
        let Received::Message(whole) = whole else {
            panic!("expected the message, got {whole:?}");
        };
        assert!(
            whole.data == expected,
            "payload differs after {cancelled} cancels"
        );
        drop(sender.await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    async fn poll_and_try_forms_work() {
        require_sctp();
        let listener = SctpListener::bind(&[addr("127.0.0.1:0")]).unwrap();
        let target = listener.get_ref().bound_addrs().unwrap()[0];
        let client = SctpStream::connect(&[target]).await.unwrap();
        let (server, _) = poll_fn(|cx| listener.poll_accept(cx)).await.unwrap();

        let nothing = server.try_recv().unwrap_err();
        assert!(nothing.is_would_block(), "{nothing:?}");
        assert!(listener.try_accept().unwrap_err().is_would_block());

        client.try_send(b"try", &SendInfo::new(1, 9)).unwrap();
        let received = poll_fn(|cx| server.poll_recv(cx)).await.unwrap();
        let Received::Message(received) = received else {
            panic!("expected a message, got {received:?}");
        };
        assert_eq!(
            (received.data.as_slice(), received.ppid()),
            (&b"try"[..], 9)
        );

        poll_fn(|cx| server.poll_send(cx, b"back", &SendInfo::new(1, 9)))
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        let part = timeout(WAIT, client.recv_part(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(part.complete);
        assert_eq!(&buf[..part.len], b"back");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "vm tier: run by cargo xtask test in the QEMU guest"]
    async fn one_to_many_async_peeloff() {
        require_sctp();
        let server = SctpBuilder::new()
            .subscribe(Event::AssocChange)
            .one_to_many(&[addr("127.0.0.1:0")])
            .unwrap();
        let server = OneToManySocket::from_std(server).unwrap();
        let port = server.local_addrs(AssocId::FUTURE).unwrap()[0].port();
        let client = OneToManySocket::bind(&[addr("127.0.0.1:0")]).unwrap();
        let assoc = client
            .connectx(&[addr(&format!("127.0.0.1:{port}"))])
            .unwrap();
        client
            .send(b"hi", &SendInfo::new(0, 1).with_assoc_id(assoc))
            .await
            .unwrap();

        let mut server_assoc = None;
        while server_assoc.is_none() {
            match timeout(WAIT, server.recv()).await.unwrap().unwrap() {
                Received::Message(message) => server_assoc = Some(message.info.unwrap().assoc_id),
                Received::Notification(Notification::AssocChange(change)) => {
                    assert_eq!(change.state, AssocChangeState::CommUp);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let peeled = server.peeloff(server_assoc.unwrap()).unwrap();
        peeled.send(b"peeled", &SendInfo::new(0, 2)).await.unwrap();
        loop {
            match timeout(WAIT, client.recv()).await.unwrap().unwrap() {
                Received::Message(message) => {
                    assert_eq!(message.data, b"peeled");
                    assert_eq!(message.info.unwrap().assoc_id, assoc);
                    break;
                }
                Received::Notification(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
