"""Realistic Chinese danmaku for measuring wire bytes (BENCHMARKS.md, "Wire bytes").

A storm as a live room sees it: short phrases, slang and numbers, emoji, the same
phrase sent again by many people (and by the same one), 50 senders with Chinese
nicknames. Deterministic for a seed, so runs and builds compare.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

PHRASES = (
    "哈哈哈哈哈",
    "666",
    "前方高能",
    "太强了",
    "主播加油",
    "来了来了",
    "泪目",
    "yyds",
    "笑死我了",
    "这是什么操作",
    "好家伙",
    "绝了",
    "下次一定",
    "爷青回",
    "打卡",
    "第一",
    "名场面",
    "弹幕护体",
    "awsl",
    "这波稳了",
    "我直接好家伙",
    "主播今天状态真好",
    "有人吗",
    "关注了关注了",
    "这个配色好看",
    "求BGM",
    "BGM是什么",
    "上车上车",
    "晚上好",
    "从B站过来的",
    "太真实了",
    "破防了",
    "蚌埠住了",
    "这也太可爱了吧",
    "我哭死",
    "啊啊啊啊啊",
    "牛牛牛",
    "学到了",
    "再来一次",
    "不愧是你",
    "这操作我给满分",
    "刚来，发生了什么",
    "外卖到了，边吃边看",
    "今天几点下播",
    "投票投票",
    "抽奖抽奖，选我选我",
    "谢谢主播",
    "支持支持",
    "有点东西",
    "我悟了",
    "离谱",
    "这画质可以",
    "声音小了一点",
    "卡了卡了",
    "终于等到了",
    "前排",
    "好听",
    "确实",
    "哈哈哈哈哈哈哈哈",
    "2333333",
)
EMOJI = ("😂", "👍", "❤️", "🔥", "🎉", "😭", "👏", "🤣", "💪", "🙏", "😍", "🐶")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN = ("小明", "阿狸", "大白", "芒果", "可乐", "星星", "奶茶", "橘子", "土豆", "饺子", "咸鱼")
SENDERS = 50


def nicknames(seed: int = 1, count: int = SENDERS) -> list[str]:
    """``count`` distinct display names such as ``王芒果`` or ``星星_17``."""
    rng = random.Random(seed)
    names: list[str] = []
    while len(names) < count:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if rng.random() < 0.4:
            name = f"{rng.choice(GIVEN)}_{rng.randint(1, 99)}"
        if name not in names:
            names.append(name)
    return names


def texts(seed: int = 1) -> Iterator[str]:
    """An endless stream of danmaku texts: a phrase (popular ones more often), now and
    then an emoji or two, a stretched laugh, a number, or the previous text again."""
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) ** 0.8 for i in range(len(PHRASES))]
    last = PHRASES[0]
    while True:
        roll = rng.random()
        if roll < 0.15:
            text = last  # a wave: the same phrase again
        elif roll < 0.22:
            text = "哈" * rng.randint(3, 15)
        elif roll < 0.27:
            text = str(rng.choice((6, 66, 666, 6666, 2333, 23333, 1, 11, 111)))
        else:
            text = rng.choices(PHRASES, weights)[0]
            if rng.random() < 0.3:
                text += rng.choice(EMOJI) * rng.randint(1, 3)
            if rng.random() < 0.1:
                text = rng.choice(PHRASES) + "，" + text
        last = text
        yield text


def storm(seed: int = 1, senders: int = SENDERS) -> Iterator[tuple[int, str]]:
    """(sender index, text) in sending order; some senders talk more than others."""
    rng = random.Random(seed + 1)
    weights = [1.0 / (i + 1) ** 0.5 for i in range(senders)]
    for text in texts(seed):
        yield rng.choices(range(senders), weights)[0], text
