"""The link and the host-port arbiter: the cycle models (hwaccel.parallel) equal the Amaranth
Components cycle for cycle -- every beat's send, head and departure cycle, the credits output
every cycle, the watchdog's cycle -- on random sizes, traffic and receiver stall patterns;
payloads arrive in order, none dropped or duplicated; the closed forms; hang errors; config
checks."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from hwaccel.generators.link import ArbiterConfig, HostPortArbiter, Link, LinkConfig
from hwaccel.generators.link.bench import run_arbiter, run_link
from hwaccel.parallel.arbiter import ArbiterHang, round_robin_cycles, simulate_arbiter
from hwaccel.parallel.link import (
    LinkHang,
    LinkModel,
    bandwidth,
    simulate,
    stall_cycle,
    transfer_cycles,
)
from hwaccel.parallel.traffic import Receiver, Transfer

TINY = LinkConfig(width=4, latency=2, buffer=16, watchdog=64, name="tiny")


def _random_receiver(rng: random.Random, p_stall: float, stops: bool = False) -> Receiver:
    prefix = tuple(rng.random() >= p_stall for _ in range(rng.randrange(0, 40)))
    if rng.random() < 0.3:                 # a long pause somewhere: trips short watchdogs
        at = rng.randrange(len(prefix) + 1)
        prefix = prefix[:at] + (False,) * rng.randrange(5, 20) + prefix[at:]
    if stops:
        return Receiver(prefix, ())
    repeat = [rng.random() >= p_stall for _ in range(rng.randrange(1, 5))]
    repeat[rng.randrange(len(repeat))] = True
    return Receiver(prefix, tuple(repeat))


def _random_transfers(rng: random.Random, width: int) -> list[Transfer]:
    out, at = [], 0
    for _ in range(rng.randrange(1, 4)):
        at += rng.choice([0, 0, rng.randrange(1, 12)])
        out.append(Transfer(rng.randrange(1, 6 * width + 1), at))
    return out


def _random_link(rng: random.Random) -> LinkConfig:
    width, latency = rng.randrange(1, 6), rng.randrange(0, 5)
    return LinkConfig(width=width, latency=latency, buffer=width * rng.randrange(1, 7),
                      watchdog=2 * latency + 2 + rng.randrange(0, 8))


def _check_link(cfg, transfers, receiver, seed):
    model = simulate(cfg, transfers, receiver)
    run, payloads = run_link(Link(cfg), transfers, receiver, cycles=model.cycles + 5, seed=seed)
    why = f"seed {seed}: {cfg}, {transfers}, {receiver}"
    assert run.sent == [b.sent for b in model.beats], why
    assert run.head == [b.head for b in model.beats], why
    assert run.left == [b.left for b in model.beats], why
    assert run.received == payloads, why                      # in order, none lost or repeated
    assert run.credits == [model.credit_state(c).free for c in range(len(run.credits))], why
    assert run.stalled_at == (model.stalled_at if model.stalled_at is not None
                              and model.stalled_at < len(run.credits) else None), why
    assert len(run.credits) == model.cycles, why
    return model


def test_link_model_equals_rtl_on_random_points(seed):
    rng = random.Random(seed)
    stalls = 0
    for _ in range(100):
        cfg = _random_link(rng)
        model = _check_link(cfg, _random_transfers(rng, cfg.width),
                            _random_receiver(rng, rng.choice([0.0, 0.3, 0.7])), seed)
        stalls += model.stalled_at is not None
    assert stalls, f"seed {seed}: no point exercised the watchdog"


@pytest.mark.parametrize("latency", [0, 1, 3])
def test_link_full_and_credit_bound_rates(latency, seed):
    """Always ready: one beat a cycle with C >= 2L + 1, else C beats per 2L + 1 cycles."""
    for credits in (1, 2 * latency, 2 * latency + 1):
        if credits == 0:
            continue
        cfg = LinkConfig(width=3, latency=latency, buffer=3 * credits)
        model = _check_link(cfg, [Transfer(3 * 4 * credits + 2)], Receiver.always(), seed)
        sent = [b.sent for b in model.beats]
        period = 1 if credits >= cfg.round_trip else cfg.round_trip
        step = 1 if credits >= cfg.round_trip else credits
        assert all(sent[k + step] - sent[k] == period for k in range(len(sent) - step))
        assert cfg.bandwidth == min(Fraction(3), Fraction(3 * credits, 2 * latency + 1))


def test_worked_example():
    """The module docstrings' example: 40 bytes over W=4, L=2, D=16 take 14 cycles; 12 with
    D=20; bytes arrive at the cycles listed."""
    model = _check_link(TINY, [Transfer(40)], Receiver.always(), 1)
    assert [b.sent for b in model.beats] == [0, 1, 2, 3, 5, 6, 7, 8, 10, 11]
    assert [b.left for b in model.beats] == [2, 3, 4, 5, 7, 8, 9, 10, 12, 13]
    assert model.byte_cycles(0)[:5] == [2, 2, 2, 2, 3]
    assert model.cycles == 14 == transfer_cycles(TINY, 40)
    assert model.utilization() == Fraction(40, 4 * 14)
    assert TINY.bandwidth == Fraction(16, 5)
    wider = TINY.with_(buffer=20)
    assert _check_link(wider, [Transfer(40)], Receiver.always(), 1).cycles == 12


def test_closed_form_equals_recurrence():
    for w in (1, 3, 4):
        for latency in range(0, 6):
            for credits in range(1, 14):
                cfg = LinkConfig(width=w, latency=latency, buffer=w * credits)
                for size in (1, w, 5 * w + 1, 37):
                    assert simulate(cfg, [Transfer(size)]).cycles == transfer_cycles(cfg, size)


def test_sustained_bandwidth_into_a_draining_receiver():
    """Ready one cycle in r: in steady state every C beats take max(C r, r ceil((2L+1)/r))
    cycles, which is bandwidth(config, r); the Component agrees on one point of each regime."""
    for latency in range(0, 5):
        for credits in range(1, 10):
            for r in range(1, 6):
                cfg = LinkConfig(width=2, latency=latency, buffer=2 * credits)
                n = 30 * credits + 40
                left = [b.left for b in simulate(cfg, [Transfer(2 * n)], Receiver.every(r)).beats]
                window = {left[k + credits] - left[k] for k in range(n // 2, n - credits)}
                assert window == {cfg.width * credits / bandwidth(cfg, r)}, (cfg, r)
    assert bandwidth(TINY, 2) == 2 and bandwidth(TINY, 3) == Fraction(4, 3)
    for r in (2, 3):
        _check_link(TINY, [Transfer(80)], Receiver.every(r), r)


def test_incremental_model_equals_whole_run(seed):
    rng = random.Random(seed)
    for _ in range(20):
        cfg = _random_link(rng)
        transfers = _random_transfers(rng, cfg.width) + _random_transfers(rng, cfg.width)
        receiver = _random_receiver(rng, 0.4)
        model = LinkModel(cfg, receiver)
        beats = [b for t in transfers for b in model.send(t)]
        whole = simulate(cfg, transfers, receiver)
        assert tuple(beats) == whole.beats and model.timing() == whole


def test_link_hang_names_link_cycle_and_credits(seed):
    """A receiver that stops draining: the model raises at the cycle the Component's
    ``stalled`` rises, with the ``credits`` output's value then."""
    rng = random.Random(seed)
    for _ in range(12):
        cfg = _random_link(rng)
        receiver = _random_receiver(rng, 0.5, stops=True)
        # More beats than the receiver takes before it stops, plus a full buffer.
        beats = len(receiver.prefix) + cfg.credits + rng.randrange(1, 4)
        transfers = [Transfer(cfg.width * beats)]
        with pytest.raises(LinkHang) as err:
            simulate(cfg, transfers, receiver, name="stage0->stage1")
        e = err.value
        assert "link 'stage0->stage1' hangs" in str(e) and f"cycle {e.cycle} " in str(e)
        assert f"{e.state.free} of {cfg.credits} credits free" in str(e)
        s = e.state
        assert s.free + s.in_flight + s.buffered + s.returning == cfg.credits
        run, _ = run_link(Link(cfg), transfers, receiver, cycles=e.cycle + 1, seed=seed)
        assert run.stalled_at == e.cycle, f"seed {seed}: {cfg} {receiver}"
        assert run.credits[e.cycle] == s.free, f"seed {seed}"


def test_watchdog_counts_cycles_without_a_move():
    """Into a receiver that takes one beat in r cycles, a beat waits r - 1 cycles at the head:
    a watchdog of 7 stays quiet for r = 7 (sends also break the waits); for r = 9 it latches
    when the last beat, with no send behind it, has waited 7 cycles. ``strict`` raises."""
    cfg = LinkConfig(width=2, latency=1, buffer=4, watchdog=7)
    every7, every9 = Receiver.every(7, phase=1), Receiver.every(9, phase=1)
    assert _check_link(cfg, [Transfer(40)], every7, 3).stalled_at is None
    model = _check_link(cfg, [Transfer(40)], every9, 3)
    last = model.beats[-1]
    assert (last.head, last.left) == (1 + 9 * 18 + 1, 1 + 9 * 19)
    assert model.stalled_at == last.head + 7
    with pytest.raises(LinkHang, match=f"it waited 7 cycles in a row; the watchdog fires at "
                                       f"cycle {last.head + 7} with"):
        simulate(cfg, [Transfer(40)], every9, strict=True)


def test_stall_cycle_merges_touching_waits_and_restarts_at_moves():
    assert stall_cycle([(3, 5), (5, 7)], [], 4) == 7
    assert stall_cycle([(3, 5), (6, 9)], [], 3) == 9
    assert stall_cycle([(3, 5), (6, 8)], [], 3) is None
    assert stall_cycle([(10, None), (2, 4)], [], 100) == 110
    assert stall_cycle([(0, 9)], [4], 5) is None
    assert stall_cycle([(0, 10)], [4], 5) == 10
    assert stall_cycle([(0, 11)], [4, 20], 5) == 10
    assert stall_cycle([(0, None)], [0, 2], 3) == 6


def test_arbiter_model_equals_rtl_on_random_points(seed):
    rng = random.Random(seed)
    for _ in range(60):
        cfg = ArbiterConfig(ports=rng.randrange(1, 5), width=rng.randrange(1, 4),
                            packets=rng.random() < 0.5)
        traffic = [_random_transfers(rng, cfg.width) if rng.random() < 0.85 else []
                   for _ in range(cfg.ports)]
        if not any(traffic):
            traffic[0] = [Transfer(1)]
        port = _random_receiver(rng, rng.choice([0.0, 0.4]))
        model = simulate_arbiter(cfg, traffic, port)
        run, payloads = run_arbiter(HostPortArbiter(cfg), traffic, port,
                                    cycles=model.cycles + 5, seed=seed)
        why = f"seed {seed}: {cfg} {traffic} {port}"
        assert [(c, p) for c, p, _ in run.crossed] == [(b.crossed, b.port)
                                                       for b in model.beats], why
        for i in range(cfg.ports):
            assert [pl for _, p, pl in run.crossed if p == i] == payloads[i], why


def test_arbiter_worked_example_and_fairness():
    traffic = [[Transfer(3)], [Transfer(3)]]
    for packets, order in ((False, [0, 1, 0, 1, 0, 1]), (True, [0, 0, 0, 1, 1, 1])):
        cfg = ArbiterConfig(ports=2, width=1, packets=packets)
        model = simulate_arbiter(cfg, traffic)
        assert [(b.crossed, b.port) for b in model.beats] == list(enumerate(order))
        run, _ = run_arbiter(HostPortArbiter(cfg), traffic, Receiver.always(), cycles=10)
        assert [(c, p) for c, p, _ in run.crossed] == list(enumerate(order))
    # Full load on four ports: each beat-wise turn is one beat, N beats a round.
    cfg = ArbiterConfig(ports=4, width=2)
    model = simulate_arbiter(cfg, [[Transfer(10)]] * 4)
    assert [b.port for b in model.beats] == [0, 1, 2, 3] * 5
    assert model.cycles == 20 and model.utilization == 1.0


def _instance(plan, made):
    """An instance: each ``(size, compute)`` of ``plan`` is a transfer, then ``compute`` idle
    cycles after its last beat crossed; what it sent goes to ``made``."""
    at = 0
    for size, compute in plan:
        made.append(Transfer(size, at))
        crossed = yield made[-1]
        at = crossed + 1 + compute


def test_arbiter_with_instances_that_compute_between_transfers(seed):
    """Ports as generators (send a transfer, compute for a while after its last beat crossed,
    send the next): the model equals itself and the Component run on the transfers it
    produced, as fixed lists."""
    rng = random.Random(seed)
    for _ in range(10):
        cfg = ArbiterConfig(ports=rng.randrange(2, 5), width=2, packets=rng.random() < 0.5)
        plans = [[(rng.randrange(1, 9), rng.randrange(0, 6)) for _ in range(rng.randrange(1, 4))]
                 for _ in range(cfg.ports)]
        made = [[] for _ in plans]

        port = _random_receiver(rng, 0.3)
        closed = simulate_arbiter(cfg, [_instance(p, m) for p, m in zip(plans, made)], port)
        assert [len(m) for m in made] == [len(p) for p in plans]
        for i, (plan, sent) in enumerate(zip(plans, made)):
            ends = [b.crossed for b in closed.beats if b.port == i and b.last]
            assert [t.at for t in sent] == [0] + [e + 1 + c for e, (_, c) in zip(ends[:-1], plan)]
        assert closed == simulate_arbiter(cfg, made, port)
        run, _ = run_arbiter(HostPortArbiter(cfg), made, port, cycles=closed.cycles + 5,
                             seed=seed)
        assert [(c, p) for c, p, _ in run.crossed] == [(b.crossed, b.port)
                                                       for b in closed.beats], f"seed {seed}"


def test_round_robin_closed_form(seed):
    rng = random.Random(seed)
    for _ in range(50):
        n = rng.randrange(1, 7)
        beats = [rng.choice([0, rng.randrange(1, 12)]) for _ in range(n)]
        if not any(beats):
            beats[0] = 1
        cfg = ArbiterConfig(ports=n, width=1)
        model = simulate_arbiter(cfg, [[Transfer(b)] if b else [] for b in beats])
        assert round_robin_cycles(beats) == [model.port_cycles(i) for i in range(n)], beats


def test_arbiter_hang_and_bad_traffic():
    cfg = ArbiterConfig(ports=2, width=2)
    with pytest.raises(ArbiterHang, match=r"arbiter 'host' hangs: the host port is never ready "
                                          r"from cycle 2 on, with beats waiting per port \[1, 1\]"):
        simulate_arbiter(cfg, [[Transfer(4)], [Transfer(4)]],
                         Receiver.stops_after([True, True]), name="host")
    with pytest.raises(ValueError, match=r"traffic must hold one list of transfers per port "
                                         r"\(2\), not 1"):
        simulate_arbiter(cfg, [[Transfer(4)]])


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"width": 0}, ValueError, "width must be at least 1, not 0"),
    ({"latency": -1}, ValueError, "latency must be at least 0, not -1"),
    ({"buffer": 10}, ValueError, r"buffer must be a multiple of width \(4\) bytes, not 10"),
    ({"buffer": 2.0}, TypeError, "buffer must be an integer, not 2.0"),
    ({"watchdog": 0}, ValueError, "watchdog must be at least 1, not 0"),
    ({"latency": 3, "watchdog": 7}, ValueError,
     r"watchdog must exceed the round trip 2 \* latency \+ 1 \(7 cycles\), not 7"),
    ({"name": "a-b"}, ValueError, "name must be an identifier-like string, not 'a-b'"),
])
def test_link_config_checks(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        LinkConfig(**kwargs)


def test_arbiter_config_and_traffic_checks():
    with pytest.raises(ValueError, match="ports must be at least 1, not 0"):
        ArbiterConfig(ports=0)
    with pytest.raises(TypeError, match="packets must be a bool, not 1"):
        ArbiterConfig(packets=1)
    with pytest.raises(ValueError, match="size must be at least 1, not 0"):
        Transfer(0)
    with pytest.raises(ValueError, match="at must be at least 0, not -2"):
        Transfer(4, at=-2)
    with pytest.raises(TypeError, match="repeat must be a tuple of bools, not"):
        Receiver((), (1, 0))
    with pytest.raises(TypeError, match="transfers must hold Transfer objects, not 5"):
        simulate(TINY, [5])
    with pytest.raises(TypeError, match="config must be a LinkConfig, not 'tiny'"):
        simulate("tiny", [Transfer(4)])


def test_presets_emit_with_their_ports(tmp_path, monkeypatch):
    """The link presets are generators (kind ``link`` in the registry: ``make rtl`` emits and
    lints them, tests/test_emit.py lints every preset); the sidecar's ports are the
    Components'."""
    from hwaccel.emit import emit, read_sidecar
    from hwaccel.generators import config_for

    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path / "build"))
    beat = 4 * 8 + 3 + 1                          # data, count (1..4: 3 bits), last
    link = read_sidecar(emit(config_for("link_tiny"), tmp_path).sidecar)
    members = link["ports"]["members"]
    assert {n: members[n]["members"]["payload"]["width"] for n in ("sink", "source")} == \
        {"sink": beat, "source": beat}
    assert members["credits"]["width"] == 3 and members["stalled"]["dir"] == "out"
    assert link["derived"]["bandwidth"] == "16/5" and link["derived"]["credits"] == 4
    arb = read_sidecar(emit(config_for("link_arbiter_tiny"), tmp_path).sidecar)
    members = arb["ports"]["members"]
    assert members["source"]["members"]["payload"]["width"] == 1 + beat
    assert [s["members"]["valid"]["name"] for s in members["sinks"]] == \
        ["sinks__0__valid", "sinks__1__valid"]
    text = (tmp_path / "link_arbiter_tiny.v").read_text()
    assert all(f"input [35:0] sinks__{i}__payload" in text for i in (0, 1))
