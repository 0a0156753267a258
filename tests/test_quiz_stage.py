"""A quiz on stage (issue 13, item 8; PROTOCOL.md, "Events" and "Views"): each reveal is
announced (`quiz_revealed`) for the screens, and each player privately hears their own
score and rank (`quiz_standing`), also when they are not in the view's top ten."""

from __future__ import annotations

from typing import Any

from tests.conftest import Client, LiveServer

ROOM = "quiz"
OPTIONS = [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}]
QUIZ = {
    "id": "z",
    "title": "Launch quiz",
    "questions": [
        {"id": "q1", "text": "1 + 1?", "options": OPTIONS, "correct": "a", "time_limit_s": 60},
        {"id": "q2", "text": "2 + 2?", "options": OPTIONS, "correct": "b", "time_limit_s": 60},
    ],
}


async def host_op(host: Client, action: str, **fields: Any) -> dict[str, Any]:
    reply = await host.command("host", action=action, **fields)
    assert reply["type"] == "ack", reply
    return reply


async def standing(player: Client) -> dict[str, Any]:
    while True:
        message = await player.recv_type("notice")
        if message.get("kind") == "quiz_standing":
            return message


async def test_every_player_hears_their_own_rank_and_screens_hear_the_reveal(live: LiveServer):
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    screen = await live.connect()
    await screen.join(ROOM, token=await live.mint(ROOM, "screen", user_id="wall"))
    await host_op(host, "create", kind="quiz", spec=QUIZ)
    await host_op(host, "ask", interaction="z")
    players = []
    # Twelve players: the first eleven right (their order is their speed), the last wrong.
    for i in range(12):
        player = await live.connect()
        await player.join(
            ROOM, token=await live.mint(ROOM, "viewer", user_id=f"p{i:02}", name=f"玩家{i}")
        )
        option = "a" if i < 11 else "b"
        reply = await player.command(
            "answer", interaction="z", question="q1", option=option, key="q1"
        )
        assert reply["type"] == "ack", reply
        players.append(player)
    await host_op(host, "close", interaction="z")
    await host_op(host, "reveal", interaction="z")

    heard = [await standing(player) for player in players]
    async with live.http() as http:
        view = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/z")).json()
    board = {row["viewer"]: row for row in view["leaderboard"]}
    assert len(board) == 10 and view["players"] == 12, view
    for i, notice in enumerate(heard):
        assert notice["interaction"] == "z" and notice["players"] == 12, notice
        assert notice["final"] is False, notice
        row = board.get(f"p{i:02}")
        if row is not None:  # in the top ten: the same figures as the board
            assert (notice["rank"], notice["points"]) == (row["rank"], row["points"]), notice
    # Answered first, ranked first; the wrong answer last, with no points.
    assert heard[0]["rank"] == 1 and heard[0]["correct"] == 1, heard[0]
    assert (heard[11]["rank"], heard[11]["points"], heard[11]["correct"]) == (12, 0, 0)
    assert heard[10]["rank"] == 11 and "p10" not in board, heard[10]
    revealed = await screen.recv_type("batch")
    while not any(e["type"] == "quiz_revealed" for e in revealed["events"]):
        revealed = await screen.recv_type("batch")
    [event] = [e for e in revealed["events"] if e["type"] == "quiz_revealed"]
    assert event == {**event, "interaction": "z", "question": "q1", "final": False}

    await host_op(host, "finish", interaction="z")
    final = await standing(players[0])
    assert final["final"] is True and final["rank"] == 1, final
    async with live.http() as http:
        view = (await http.get(f"/api/v1/rooms/{ROOM}/interactions/z")).json()
    assert view["state"]["finished"] and view["state"]["finished_at"] is not None, view


async def test_a_viewer_who_did_not_play_hears_no_standing(live: LiveServer):
    await live.create_room(ROOM)
    host = await live.connect()
    await host.join(ROOM, token=await live.mint(ROOM, "host"))
    await host_op(host, "create", kind="quiz", spec=QUIZ)
    await host_op(host, "ask", interaction="z")
    player, watcher = await live.connect(), await live.connect()
    await player.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="player"))
    await watcher.join(ROOM, token=await live.mint(ROOM, "viewer", user_id="watcher"))
    reply = await player.command("answer", interaction="z", question="q1", option="a", key="k")
    assert reply["type"] == "ack", reply
    await host_op(host, "finish", interaction="z")
    assert (await standing(player))["final"] is True
    # The watcher's stream carries the finish, and no notice of a standing before it.
    while True:
        message = await watcher.recv()
        assert not (message["type"] == "notice" and message.get("kind") == "quiz_standing")
        if message["type"] == "batch" and any(
            e["type"] == "quiz_revealed" for e in message["events"]
        ):
            break
