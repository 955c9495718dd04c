"""The hybrid agent (lesson 11): perceive, plan with A*, act, watch what happened, replan.

What the agent knows: the start, the goal and where the objects lie; one noisy look at the whole
map at the start (turned into wall probabilities by the perception net); and, as it moves, the true
walls within `sense_radius` cells of where it stands (a short-range sensor, like bumping into
things before it happens). Without that local truth no amount of replanning could fix a wrong map.

The loop, each step:
1. sense the cells around the agent and write the truth into the belief;
2. replan (A* on the belief) when there is no plan, when the rest of the plan crosses a cell now
   known to be a wall, or when the agent is off the plan and the policy cannot bring it back;
3. act: follow the plan; after a slip that left the agent next to the cell it should be on, the
   neural policy proposes the step back, and that step is taken when it leads onto the plan.
If the believed map has no plan at all (perception drew walls that cut the way), the agent plans
optimistically: unseen cells count as free until it has looked at them.

The baselines of lesson 11 are here too, with the same `run_many` interface: `OpenLoopPlanner`
(plan once on the map it was given, then execute blindly) and `PolicyAgent` (the policy alone).
"""

from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np

from neurosymbolic.delivery import Delivery
from neurosymbolic.perception import Perception
from neurosymbolic.planner import NoPlanError, Plan, Successors, astar
from neurosymbolic.policy import Policy, features, policy_mover, rollout
from neurosymbolic.world import MOVES, Cell, Episode, GridWorld, State


def observe_all(worlds: list[GridWorld], seeds: list[int], noise: float):
    """One noisy look at each world, drawn from a generator seeded per episode (reused for slips)."""
    rngs = [np.random.default_rng(s) for s in seeds]
    return [w.observe(noise, r) for w, r in zip(worlds, rngs, strict=True)], rngs


def wall_beliefs(observations: list[np.ndarray], perception: Perception | None) -> list[np.ndarray]:
    """Wall probabilities: the perception net's, or the raw observation clipped to [0, 1]."""
    if perception is None:
        return [np.clip(obs, 0.0, 1.0) for obs in observations]
    shapes = {obs.shape for obs in observations}
    if len(shapes) == 1:  # one batched network call when all maps have the same size
        return list(perception.perceive(np.stack(observations)))
    return [perception.perceive(obs) for obs in observations]


def known_free(world: GridWorld, walls: np.ndarray) -> np.ndarray:
    """`walls` with the start, the goal and the objects' cells cleared: the agent knows them."""
    walls = walls.copy()
    for cell in [world.start, world.goal, *world.objects.values()]:
        walls[cell] = False
    return walls


def needs_replan(cell: Cell, ahead: list[Cell], believed: np.ndarray) -> bool:
    """The monitor: replan unless the agent stands on ``ahead[0]`` (where the plan expects it) and
    none of the cells still ahead is believed to be a wall. No plan (``ahead == []``) means replan."""
    return not ahead or cell != ahead[0] or any(believed[c] for c in ahead)


def sense(believed: np.ndarray, walls: np.ndarray, cell: Cell, radius: int) -> np.ndarray:
    """The belief (H, W) after sensing: the true `walls` within `radius` cells of `cell` (a square
    of side 2 * radius + 1, cut at the map's edges) replace what was believed there."""
    rows = slice(max(cell[0] - radius, 0), cell[0] + radius + 1)
    cols = slice(max(cell[1] - radius, 0), cell[1] + radius + 1)
    sensed = believed.copy()
    sensed[rows, cols] = walls[rows, cols]
    return sensed


def plan_on(world: GridWorld, walls: np.ndarray, state: State) -> Plan:
    """The planner the hybrid agent calls: an optimal delivery plan from `state` on `walls`."""
    return astar(world, walls=walls, state=state)


# (world, believed walls (H, W), state) -> Plan, or NoPlanError
Planner = Callable[[GridWorld, np.ndarray, State], Plan]
# lesson 8's exercise: (start, successors, heuristic, is_goal) -> the actions of a cheapest plan
Search = Callable[[Hashable, Successors, Callable, Callable], list[str] | None]


def planner_from_search(search: Search) -> Planner:
    """A `Planner` whose search is `search` (lesson 8's A*), over the states of the delivery
    task with its collection heuristic; the plan's cells come from replaying the actions."""

    def plan(world: GridWorld, walls: np.ndarray, state: State) -> Plan:
        walls = walls.copy()
        walls[state.cell] = False  # the agent stands there, so it is free whatever the map says
        problem = Delivery(world, walls)
        key = problem.key(state)
        actions = search(key, problem.successors, problem.heuristic("collect"), problem.is_goal)
        if actions is None:
            raise NoPlanError(f"the search found no plan from {state.cell}.")
        cells = [problem.cell(key)]
        for action in actions:
            nexts = [nxt for a, nxt, _ in problem.successors(key) if a == action]
            if not nexts:
                raise ValueError(
                    f"the search's plan {list(actions)} takes {action!r} at {problem.cell(key)}, "
                    "where that action changes nothing.\nhelp: return the actions that "
                    "successors gave on the way to the goal."
                )
            key = nexts[0]
            cells.append(problem.cell(key))
        return Plan(list(actions), cells, float(len(actions)), 0)

    return plan


def _check_max_steps(max_steps: int) -> None:
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}.\nhelp: e.g. max_steps=200.")


class Agent:
    """Runs episodes; subclasses implement `run_many`."""

    name = "agent"

    def run_many(
        self, worlds: list[GridWorld], seeds: list[int], noise: float, slip: float, max_steps: int
    ) -> list[Episode]:
        raise NotImplementedError

    def run(
        self,
        world: GridWorld,
        seed: int = 0,
        noise: float = 0.8,
        slip: float = 0.05,
        max_steps: int = 200,
    ) -> Episode:
        """One episode in `world`: seeded observation noise and slips, at most `max_steps` actions."""
        _check_max_steps(max_steps)
        return self.run_many([world], [seed], noise, slip, max_steps)[0]


class OpenLoopPlanner(Agent):
    """A* once on the map it believes (raw noisy look, or perceived), then every action blindly."""

    def __init__(self, perception: Perception | None = None, threshold: float = 0.5):
        self.perception, self.threshold = perception, threshold
        self.name = "planner-perceived" if perception else "planner-noisy"

    def run_many(self, worlds, seeds, noise, slip, max_steps):
        observations, rngs = observe_all(worlds, seeds, noise)
        episodes = []
        for world, probs, rng in zip(
            worlds, wall_beliefs(observations, self.perception), rngs, strict=True
        ):
            state = world.initial_state()
            episode = Episode([state.cell], [], False)
            try:
                plan = astar(world, walls=known_free(world, probs > self.threshold))
            except NoPlanError:
                episodes.append(episode)
                continue
            episode.planned_cells.append(plan.cells)
            for action in plan.actions[:max_steps]:
                state = world.step(state, action, slip, rng)
                episode.actions.append(action)
                episode.cells.append(state.cell)
            episode.success = world.is_solved(state)
            episodes.append(episode)
        return episodes


class PolicyAgent(Agent):
    """The policy alone on the perceived map, heading for the nearest object, then the goal."""

    name = "policy"

    def __init__(self, perception: Perception | None, policy: Policy):
        self.perception, self.policy = perception, policy

    def run_many(self, worlds, seeds, noise, slip, max_steps):
        observations, rngs = observe_all(worlds, seeds, noise)
        probs = wall_beliefs(observations, self.perception)
        beliefs = [known_free(w, b) for w, b in zip(worlds, probs, strict=True)]
        return rollout(worlds, policy_mover(self.policy), beliefs, slip, rngs, max_steps)


@dataclass
class HybridConfig:
    sense_radius: int = 1  # true walls are seen within this many cells (a 3x3 patch for 1)
    threshold: float = 0.5  # perceived probability above which an unseen cell counts as a wall

    def __post_init__(self):
        if self.sense_radius < 1 or not 0.0 < self.threshold < 1.0:
            raise ValueError(
                f"need sense_radius >= 1 and 0 < threshold < 1, got {self.sense_radius}, "
                f"{self.threshold}.\nhelp: the defaults are 1 and 0.5."
            )


class HybridAgent(Agent):
    """Perceive, plan on the belief, act, compare with what happened, and replan (module docstring).

    Its pieces can be the learner's (lesson 14): `planner` (see `planner_from_search` for lesson
    8's A*), `sense` and `monitor` (lesson 11) with the signatures of this module's `sense` and
    `needs_replan`, and `recover(cell, plan_cell, believed) -> move or None` (lesson 11), which
    replaces the policy's recovery step (None: the policy's).
    """

    name = "hybrid"

    def __init__(
        self,
        perception: Perception | None,
        policy: Policy | None,
        config: HybridConfig | None = None,
        planner: Planner = plan_on,
        sense: Callable[[np.ndarray, np.ndarray, Cell, int], np.ndarray] = sense,
        monitor: Callable[[Cell, list[Cell], np.ndarray], bool] = needs_replan,
        recover: Callable[[Cell, Cell, np.ndarray], str | None] | None = None,
    ):
        self.perception, self.policy = perception, policy
        self.config = config or HybridConfig()
        self.planner, self.sense, self.monitor, self.recover = planner, sense, monitor, recover

    def run_many(self, worlds, seeds, noise, slip, max_steps):
        observations, rngs = observe_all(worlds, seeds, noise)
        beliefs = wall_beliefs(observations, self.perception)
        return [
            self._episode(w, b, r, slip, max_steps)
            for w, b, r in zip(worlds, beliefs, rngs, strict=True)
        ]

    def run_traced(
        self,
        world: GridWorld,
        seed: int = 0,
        noise: float = 0.8,
        slip: float = 0.05,
        max_steps: int = 200,
    ) -> tuple[Episode, list["BeliefFrame"]]:
        """`run`, plus one `BeliefFrame` a step: what the agent believed, had sensed and planned."""
        _check_max_steps(max_steps)
        observations, rngs = observe_all([world], [seed], noise)
        (probs,) = wall_beliefs(observations, self.perception)
        frames: list[BeliefFrame] = []
        return self._episode(world, probs, rngs[0], slip, max_steps, frames), frames

    def _episode(
        self,
        world: GridWorld,
        probs: np.ndarray,
        rng,
        slip: float,
        max_steps: int,
        frames: list | None = None,
    ) -> Episode:
        radius = self.config.sense_radius
        believed = known_free(world, probs > self.config.threshold)  # (H, W), updated by sensing
        seen = np.zeros(world.shape, dtype=bool)  # (H, W), cells whose truth the agent has sensed
        state = world.initial_state()
        episode = Episode([state.cell], [], False, replans=-1)  # the first plan is not a replan
        plan, index = None, 0
        record = frames.append if frames is not None else lambda frame: None  # for pictures only
        while len(episode.actions) < max_steps and not world.is_solved(state):
            # 1) sense: the true walls around the agent overwrite the belief
            rows = slice(max(state.cell[0] - radius, 0), state.cell[0] + radius + 1)
            cols = slice(max(state.cell[1] - radius, 0), state.cell[1] + radius + 1)
            seen[rows, cols] = True
            believed = np.asarray(self.sense(believed, world.walls, state.cell, radius), bool)
            # 2) off the plan after a slip: the policy may step back onto it without a new search
            if plan is not None and state.cell != plan.cells[index]:
                move = self._recovery_move(believed, state.cell, plan.cells[index])
                if move is not None:
                    state = self._act(world, state, move, slip, rng, episode)
                    episode.policy_steps += 1
                    record(
                        BeliefFrame.of(world, episode, state, believed, seen, plan, index, "policy")
                    )
                    continue
            # 3) replan when there is no plan, the agent is off it, or it now crosses a known wall
            if self.monitor(state.cell, plan.cells[index:] if plan else [], believed):
                try:
                    plan = self._plan(world, state, believed, seen)
                except NoPlanError:
                    break  # not even the optimistic map has a way: give up
                index = 0
                episode.replans += 1
                episode.planned_cells.append(plan.cells)
                event = "plan" if episode.replans == 0 else "replan"
            else:
                event = "move"
            # 4) act on the plan
            state = self._act(world, state, plan.actions[index], slip, rng, episode)
            if state.cell == plan.cells[index + 1]:
                index += 1
            record(BeliefFrame.of(world, episode, state, believed, seen, plan, index, event))
        episode.replans = max(episode.replans, 0)
        episode.success = world.is_solved(state)
        return episode

    @staticmethod
    def _act(world, state, action, slip, rng, episode):
        state = world.step(state, action, slip, rng)
        episode.actions.append(action)
        episode.cells.append(state.cell)
        return state

    def _plan(self, world: GridWorld, state, believed: np.ndarray, seen: np.ndarray) -> Plan:
        try:
            return self.planner(world, believed, state)
        except NoPlanError:  # the believed walls cut the way: trust only what has been seen
            return self.planner(world, believed & seen, state)

    def _recovery_move(self, believed: np.ndarray, cell, plan_cell) -> str | None:
        """The policy's (or `recover`'s) move toward `plan_cell` if it lands there, else None."""
        if self.recover is not None:
            move = self.recover(cell, plan_cell, believed.copy())
            if move not in MOVES:
                return None
        elif self.policy is None or abs(cell[0] - plan_cell[0]) + abs(cell[1] - plan_cell[1]) != 1:
            return None
        else:
            feats = features(
                believed.astype(np.float32), cell, plan_cell, self.policy.config.window
            )
            move = self.policy.act(feats)[0]
        lands = (cell[0] + MOVES[move][0], cell[1] + MOVES[move][1])
        return move if lands == plan_cell else None


@dataclass
class BeliefFrame:
    """What the hybrid agent knew after one step, for pictures (`viz.animate_belief`)."""

    state: State
    believed: np.ndarray  # (H, W) bool, the walls it believed before this step's move
    seen: np.ndarray  # (H, W) bool, cells whose truth it had sensed
    ahead: list[Cell]  # the current plan's cells still ahead
    event: str  # "plan", "replan", "move" or "policy" (the step came from the policy)
    slipped: bool  # the move did not land where it was meant to on the true map

    @classmethod
    def of(cls, world, episode, state, believed, seen, plan, index, event) -> "BeliefFrame":
        before, action = episode.cells[-2], episode.actions[-1]
        meant = before
        if action in MOVES:
            target = (before[0] + MOVES[action][0], before[1] + MOVES[action][1])
            meant = target if world.is_free(target) else before
        ahead = list(plan.cells[index:]) if plan is not None else []
        return cls(state, believed.copy(), seen.copy(), ahead, event, state.cell != meant)
