async def test_join_and_danmaku_roundtrip(live):
    await live.create_room("r1")
    a = await live.connect("hudong.v1.json")
    b = await live.connect("hudong.v1.msgpack")
    joined = await a.join("r1", name="alice")
    assert joined["you"]["name"] == "alice"
    assert joined["snapshot"]["room"]["id"] == "r1"
    await b.join("r1")
    reply = await a.command("danmaku", text="hello", color="#00FF00", mode="top")
    assert reply["type"] == "ack"
    for client in (a, b):
        batch = await client.recv_type("batch")
        (event,) = batch["events"]
        assert (event["text"], event["color"], event["mode"]) == ("hello", "#00ff00", "top")
        assert event["id"] == reply["event"]
