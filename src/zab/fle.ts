/**
 * Fast Leader Election (FLE), ZooKeeper's phase 0 (FastLeaderElection.lookForLeader;
 * Medeiros, "ZooKeeper's atomic broadcast protocol: Theory and practice", 2012, §4.1),
 * as a pure sub-state machine of the ZAB engine.
 *
 * A LOOKING node votes for a prospective leader and tells every voter. A vote is
 * (leader, epoch, zxid): the candidate's currentEpoch and last zxid. Votes are ordered
 * by (epoch, zxid, leader id) (`better`, ZooKeeper's totalOrderPredicate): a node
 * adopts any better vote it hears and re-announces it. Each election has a round
 * (ZooKeeper's logicalclock); a notification of a later round resets the votes heard,
 * one of an earlier round is answered with our current vote. Once a quorum of voters
 * in our round votes as we do, we wait `finalizeWait` for a better vote still in
 * flight and then conclude: LEADING if the vote is ours, else FOLLOWING (OBSERVING for
 * an observer).
 *
 * A node that joins while the others already follow a leader learns it from their
 * answers: non-LOOKING voters answer a LOOKING notification with the vote they
 * concluded and their state. A quorum of such reports naming the same leader (with
 * the same epoch), plus that leader's own LEADING report, ends the join
 * (`outOfElection`, ZooKeeper's checkLeader). This is why a returning or partitioned
 * node never disturbs a healthy leader: it is told who leads and follows.
 *
 * FLE gives a likely leader, not safety: two nodes may conclude differently (a
 * late vote, a partition). Safety comes from discovery (one epoch, one established
 * leader per quorum) and synchronization in zab.ts. Nothing here is durable: rounds
 * start again at 0 after a restart, as in ZooKeeper.
 *
 * Witnesses vote but are never elected; observers do not vote, and join only from
 * the reports of voters. A vote for leader 0 means "no candidate yet" (a witness's or
 * an observer's initial vote): it loses to every real vote and never concludes.
 */
import { NO_NODE, type Index, type NodeId, type Term } from '../types.ts';
import { MsgType, ZabPeerState, type ZabNotification } from '../wire/messages.ts';

export interface Vote {
  leader: NodeId;
  /** The candidate's currentEpoch (ZooKeeper's peerEpoch). */
  epoch: Term;
  /** The candidate's last zxid, as (epoch of its last entry, its index). */
  zxidTerm: Term;
  zxidIndex: Index;
}

export const NO_VOTE: Readonly<Vote> = Object.freeze({ leader: NO_NODE, epoch: 0, zxidTerm: 0, zxidIndex: 0 });

/** ZooKeeper's totalOrderPredicate: is `a` a better vote than `b`? (epoch, then zxid, then id.) */
export function better(a: Vote, b: Vote): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.zxidTerm !== b.zxidTerm) return a.zxidTerm > b.zxidTerm;
  if (a.zxidIndex !== b.zxidIndex) return a.zxidIndex > b.zxidIndex;
  return a.leader > b.leader;
}

interface Report {
  vote: Vote;
  state: ZabPeerState;
  round: number;
}

/**
 * ZooKeeper's Vote.equals: between two settled reports (FOLLOWING/LEADING) the leader
 * and its epoch suffice; when either is still LOOKING the whole vote must match.
 */
function sameVote(a: Report, v: Vote, state: ZabPeerState): boolean {
  if (a.vote.leader !== v.leader || a.vote.epoch !== v.epoch) return false;
  if (a.state !== ZabPeerState.Looking && state !== ZabPeerState.Looking) return true;
  return a.vote.zxidTerm === v.zxidTerm && a.vote.zxidIndex === v.zxidIndex;
}

export interface FleHost {
  readonly id: NodeId;
  /** Voters and witnesses: they count toward quorums. */
  isVoting(id: NodeId): boolean;
  /** Voters only: they can lead. */
  isElectable(id: NodeId): boolean;
  isMember(id: NodeId): boolean;
  /** Voting members, this node included if it votes. */
  readonly votingMembers: readonly NodeId[];
  readonly quorum: number;
  send(m: ZabNotification): void;
}

export interface Decision {
  vote: Vote;
  round: number;
  state: ZabPeerState.Leading | ZabPeerState.Following | ZabPeerState.Observing;
}

export interface FleTicks {
  resendMin: number;
  resendMax: number;
  finalizeWait: number;
}

export class FastLeaderElection {
  /** ZooKeeper's logicalclock. Volatile; grows within one incarnation. */
  round = 0;
  proposal: Vote = NO_VOTE;
  /** Set when the election concluded; the engine reads and acts on it. */
  decided: Decision | undefined;
  /** Notifications ignored (not a member, a vote for a node that cannot lead). */
  dropped = 0;
  private init: Vote = NO_VOTE;
  private recv = new Map<NodeId, Report>();
  private outOfElection = new Map<NodeId, Report>();
  /** Ticks left of the finalize wait; -1 when not waiting. */
  private finalizeLeft = -1;
  private resendLeft = 0;
  private resendInterval: number;
  private looking = false;

  constructor(
    private readonly host: FleHost,
    private readonly ticks: FleTicks,
  ) {
    this.resendInterval = ticks.resendMin;
  }

  get isLooking(): boolean {
    return this.looking;
  }

  /** lookForLeader: a new round with our own vote. */
  start(own: Vote): void {
    this.looking = true;
    this.round++;
    this.decided = undefined;
    this.recv.clear();
    this.outOfElection.clear();
    this.init = own;
    this.proposal = own;
    this.finalizeLeft = -1;
    this.noteOwnVote();
    this.announce();
    this.evaluate();
  }

  /** Leaves LOOKING (the engine concluded, or gave up electing). */
  stop(): void {
    this.looking = false;
    this.finalizeLeft = -1;
  }

  tick(): void {
    if (!this.looking) return;
    if (this.finalizeLeft > 0 && --this.finalizeLeft === 0) {
      this.finalizeLeft = -1;
      if (this.quorumAgrees(this.recv, this.proposal, ZabPeerState.Looking)) return this.conclude(this.proposal, this.round);
    }
    if (--this.resendLeft <= 0) {
      this.sendAll();
      this.resendInterval = Math.min(this.resendInterval * 2, this.ticks.resendMax);
      this.resendLeft = this.resendInterval;
    }
  }

  /** A notification while LOOKING (the engine answers notifications itself when not looking). */
  handle(n: ZabNotification): void {
    if (!this.looking) return;
    const h = this.host;
    const from = n.from;
    if (!h.isMember(from) || (n.leader !== NO_NODE && !h.isElectable(n.leader))) {
      this.dropped++;
      return;
    }
    const vote: Vote = { leader: n.leader, epoch: n.epoch, zxidTerm: n.zxidTerm, zxidIndex: n.zxidIndex };
    if (!h.isVoting(from)) {
      // An observer asking who leads: tell it what we think (it uses only settled reports).
      if (n.state === ZabPeerState.Looking) this.sendTo(from, this.proposal, ZabPeerState.Looking, this.round);
      return;
    }
    switch (n.state) {
      case ZabPeerState.Looking: {
        if (!h.isVoting(h.id)) return; // observers learn only from settled reports
        if (n.term > this.round) {
          this.round = n.term;
          this.recv.clear();
          this.finalizeLeft = -1;
          this.proposal = better(vote, this.init) ? vote : this.init;
          this.noteOwnVote();
          this.announce();
        } else if (n.term < this.round) {
          // A voter behind us: tell it our round and vote, and ignore its stale vote.
          this.sendTo(from, this.proposal, ZabPeerState.Looking, this.round);
          return;
        } else if (better(vote, this.proposal)) {
          this.proposal = vote;
          this.finalizeLeft = -1;
          this.noteOwnVote();
          this.announce();
        }
        this.recv.set(from, { vote, state: ZabPeerState.Looking, round: n.term });
        this.evaluate();
        return;
      }
      case ZabPeerState.Following:
      case ZabPeerState.Leading: {
        const r: Report = { vote, state: n.state, round: n.term };
        this.outOfElection.set(from, r);
        if (vote.leader === NO_NODE) return;
        if (n.term === this.round) {
          this.recv.set(from, r);
          if (this.quorumAgrees(this.recv, vote, n.state) && this.checkLeader(vote.leader, n.term)) return this.conclude(vote, n.term);
        }
        if (this.quorumAgrees(this.outOfElection, vote, n.state) && this.checkLeader(vote.leader, n.term)) {
          this.round = n.term;
          this.conclude(vote, n.term);
        }
        return;
      }
      default:
        return; // OBSERVING reports carry no vote that counts
    }
  }

  // ---------------------------------------------------------------------------

  private evaluate(): void {
    if (this.decided || this.proposal.leader === NO_NODE) return;
    if (!this.quorumAgrees(this.recv, this.proposal, ZabPeerState.Looking)) {
      this.finalizeLeft = -1;
      return;
    }
    if (this.ticks.finalizeWait === 0) return this.conclude(this.proposal, this.round);
    if (this.finalizeLeft < 0) this.finalizeLeft = this.ticks.finalizeWait;
  }

  private conclude(vote: Vote, round: number): void {
    const h = this.host;
    const state = vote.leader === h.id ? ZabPeerState.Leading : h.isVoting(h.id) ? ZabPeerState.Following : ZabPeerState.Observing;
    this.decided = { vote: { ...vote }, round, state };
    this.stop();
  }

  /** ZooKeeper's checkLeader: a leader other than us must itself report LEADING; we lead only from our own round. */
  private checkLeader(leader: NodeId, round: number): boolean {
    if (leader !== this.host.id) return this.outOfElection.get(leader)?.state === ZabPeerState.Leading;
    return round === this.round;
  }

  /** ZooKeeper's termPredicate: a quorum of voters reports this vote. */
  private quorumAgrees(reports: Map<NodeId, Report>, v: Vote, state: ZabPeerState): boolean {
    let n = 0;
    for (const id of this.host.votingMembers) {
      const r = reports.get(id);
      if (r && sameVote(r, v, state)) n++;
    }
    return n >= this.host.quorum;
  }

  /** Our own vote counts in our round, as ZooKeeper's notification to itself. */
  private noteOwnVote(): void {
    if (this.host.isVoting(this.host.id)) this.recv.set(this.host.id, { vote: this.proposal, state: ZabPeerState.Looking, round: this.round });
  }

  /** Sends the vote to everyone and restarts the resend backoff. */
  private announce(): void {
    this.sendAll();
    this.resendInterval = this.ticks.resendMin;
    this.resendLeft = this.resendInterval;
  }

  private sendAll(): void {
    for (const to of this.host.votingMembers) if (to !== this.host.id) this.sendTo(to, this.proposal, ZabPeerState.Looking, this.round);
  }

  private sendTo(to: NodeId, v: Vote, state: ZabPeerState, round: number): void {
    this.host.send({ type: MsgType.ZabNotification, from: this.host.id, to, term: round, leader: v.leader, epoch: v.epoch, zxidTerm: v.zxidTerm, zxidIndex: v.zxidIndex, state });
  }
}
