//! The MLLP connection itself: many messages per connection, frames split
//! across reads or several per read, a size limit, garbage and idle
//! connections; every answer an ACK echoing the control id.

use std::time::Duration;

use verdad::mllp::MllpSettings;

use crate::helpers::{Mllp, TestApp, demo_adt_feed, framed, hl7_file, spawn_app, spawn_app_with};

async fn demo_with_feed(app: &TestApp) -> (String, String) {
    let key = app.demo_key().await;
    let feed = app.create_feed(&key, demo_adt_feed()).await;
    (key, feed.id)
}

#[tokio::test]
async fn one_connection_carries_many_messages_each_acknowledged_in_turn() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    for (file, control) in [
        ("a04.hl7", "A04-0001"),
        ("a09.hl7", "A09-0001"),
        ("a10.hl7", "A10-0001"),
    ] {
        mllp.send(&hl7_file(file)).await.assert("AA", control);
    }
    assert_eq!(app.count_encounters(&key).await, 3);
}

#[tokio::test]
async fn a_message_split_over_many_reads_is_one_message() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let frame = framed(&hl7_file("a04.hl7"));
    for piece in frame.chunks(7) {
        mllp.write(piece).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    mllp.ack().await.assert("AA", "A04-0001");
    assert_eq!(app.count_encounters(&key).await, 1);
}

#[tokio::test]
async fn two_messages_in_one_read_get_two_acks_in_order() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let mut both = framed(&hl7_file("a04.hl7"));
    both.extend(framed(&hl7_file("a09.hl7")));
    mllp.write(&both).await;

    mllp.ack().await.assert("AA", "A04-0001");
    mllp.ack().await.assert("AA", "A09-0001");
    assert_eq!(app.count_encounters(&key).await, 2);
}

#[tokio::test]
async fn a_message_over_the_limit_is_rejected_and_the_connection_goes_on() {
    let app = spawn_app().await;
    let (key, feed) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let mut huge = hl7_file("a04.hl7");
    huge.extend(b"NTE|1||".iter());
    huge.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    huge.push(b'\r');
    let ack = mllp.send(&huge).await;
    ack.assert("AR", "A04-0001");
    assert!(ack.text.contains("over the limit"), "{}", ack.text);

    mllp.send(&hl7_file("a09.hl7"))
        .await
        .assert("AA", "A09-0001");
    assert_eq!(app.count_encounters(&key).await, 1);
    let rejections = app.rejections(&key, &feed).await;
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].acknowledgement, "AR");
    assert_eq!(rejections[0].control_id, "A04-0001");
}

#[tokio::test]
async fn garbage_bytes_close_the_connection_and_the_server_goes_on() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    mllp.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(mllp.closed().await, "the connection stayed open");

    let mut again = Mllp::connect(&app).await;
    again
        .send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");
    assert_eq!(app.count_encounters(&key).await, 1);
}

#[tokio::test]
async fn a_frame_of_noise_is_rejected_without_a_control_id() {
    let app = spawn_app().await;
    let (key, _) = demo_with_feed(&app).await;
    let mut mllp = Mllp::connect(&app).await;

    let ack = mllp.send(b"\x00\x01\x02 not hl7 at all \xff\xfe").await;
    ack.assert("AR", "");

    mllp.send(&hl7_file("a04.hl7"))
        .await
        .assert("AA", "A04-0001");
    assert_eq!(app.count_encounters(&key).await, 1);
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let app = spawn_app_with(|settings| {
        settings.mllp = Some(MllpSettings {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            max_message_bytes: verdad::mllp::DEFAULT_MAX_MESSAGE_BYTES,
            idle_timeout: Duration::from_millis(300),
            tls: None,
        });
    })
    .await;
    let mut mllp = Mllp::connect(&app).await;

    assert!(mllp.closed().await, "the idle connection stayed open");
}
