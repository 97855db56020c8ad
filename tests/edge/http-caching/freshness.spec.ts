// Freshness lifetime of a shared cache (RFC 9111 §4.2.1): s-maxage, else
// max-age, else Expires − Date; the rule's ttl only when the origin gives none
// (freshness = "origin"); max_ttl caps it; freshness = "override" is the rule's
// ttl whatever the origin says; heuristic freshness (§4.2.2) is opt-in.
// Routes: /rfc/origin (ttl 2s), /rfc/maxttl (max_ttl 2s), /rfc/override
// (ttl 2s, swr 1h), /rfc/heuristic (max_ttl 4s) in gateway.test.toml.
import { describe, expect, it, vi } from "vitest";
import { cacheStatus } from "../support/expect";
import { unique } from "../support/harness";
import type { Behaviour } from "../support/origin";
import { asctimeDate, httpDate, rfc850Date, servedHit, storedHit, timeline, type Expected, useRfcEdge } from "./helpers";

const edge = useRfcEdge();
// The concurrent tests mostly wait for entries to expire: let ten wait at once (the
// default of 5 at a time would add their sleeps up).
vi.setConfig({ maxConcurrency: 10 });

interface Case {
  title: string;
  route: string;
  behaviour: Behaviour;
  steps: [number, Expected][];
}

const cases: Case[] = [
  {
    title: "§4.2.1: s-maxage wins over max-age (s-maxage=60, max-age=1: fresh after 2 s)",
    route: "origin",
    behaviour: { headers: { "cache-control": "s-maxage=60, max-age=1" } },
    steps: [[0, "fresh"], [2_100, "fresh"]],
  },
  {
    title: "§4.2.1: s-maxage wins over max-age (s-maxage=1, max-age=60: stale after 1 s)",
    route: "origin",
    behaviour: { headers: { "cache-control": "max-age=60, s-maxage=1" } },
    steps: [[0, "fresh"], [2_100, "stale"]],
  },
  {
    title: "§4.2.1 / §5.3: max-age wins over Expires (max-age=60, Expires in the past)",
    route: "origin",
    behaviour: { headers: { "cache-control": "max-age=60" }, dynamicHeaders: () => ({ expires: httpDate(-60) }) },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§4.2.1 / §5.3: max-age wins over Expires (max-age=1, Expires in an hour)",
    route: "origin",
    behaviour: { headers: { "cache-control": "max-age=1" }, dynamicHeaders: () => ({ expires: httpDate(3600) }) },
    steps: [[0, "fresh"], [2_100, "stale"]],
  },
  {
    title: "§4.2.1: Expires − Date is the lifetime without max-age (Expires = Date + 60 s outlives the ttl of 2 s)",
    route: "origin",
    behaviour: { dynamicHeaders: () => ({ date: httpDate(0), expires: httpDate(60) }) },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§4.2.1: Expires − Date, computed from the origin's Date (Date 100 s ago, Expires 40 s ago: lifetime 60 s, age 100 s: stale)",
    route: "origin",
    behaviour: { dynamicHeaders: () => ({ date: httpDate(-100), expires: httpDate(-40) }) },
    steps: [[0, "stale"]],
  },
  {
    title: "§5.3 / RFC 9110 §5.6.7: Expires and Date in the obsolete RFC 850 form are understood (Date + 60 s)",
    route: "origin",
    behaviour: { dynamicHeaders: () => ({ date: rfc850Date(0), expires: rfc850Date(60) }) },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§5.3 / RFC 9110 §5.6.7: Expires and Date in the obsolete asctime form are understood (Date + 60 s)",
    route: "origin",
    behaviour: { dynamicHeaders: () => ({ date: asctimeDate(0), expires: asctimeDate(60) }) },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§5.2: directive names are case-insensitive (MAX-AGE=60 outlives the ttl of 2 s)",
    route: "origin",
    behaviour: { headers: { "cache-control": "MAX-AGE=60" } },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§5.2: a quoted-string argument is accepted (max-age=\"60\" outlives the ttl of 2 s)",
    route: "origin",
    behaviour: { headers: { "cache-control": 'max-age="60"' } },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§5.2: Cache-Control split over several field lines is one list (public / max-age=60 on two lines)",
    route: "origin",
    behaviour: { headers: { "cache-control": ["public", "max-age=60"] } },
    steps: [[0, "fresh"], [2_600, "fresh"]],
  },
  {
    title: "§5.3: an invalid Expires (0) means already expired, not the rule's ttl",
    route: "origin",
    behaviour: { headers: { expires: "0" } },
    steps: [[0, "stale"]],
  },
  {
    title: "§5.2.2.1: max-age=0 is stale at once, not the rule's ttl",
    route: "origin",
    behaviour: { headers: { "cache-control": "max-age=0" } },
    steps: [[0, "stale"]],
  },
  {
    title: "§4.2.1: the rule's ttl (2 s) applies when the origin gives no freshness",
    route: "origin",
    behaviour: {},
    steps: [[0, "fresh"], [2_600, "stale"]],
  },
  {
    title: "§4.2.2: no heuristic freshness unless enabled (Last-Modified a day ago, no freshness: the ttl of 2 s)",
    route: "origin",
    behaviour: { dynamicHeaders: () => ({ "last-modified": httpDate(-86_400) }) },
    steps: [[0, "fresh"], [2_600, "stale"]],
  },
  {
    title: "max_ttl (2 s) caps max-age=3600",
    route: "maxttl",
    behaviour: { headers: { "cache-control": "max-age=3600" } },
    steps: [[0, "fresh"], [2_600, "stale"]],
  },
  {
    title: "max_ttl (2 s) caps s-maxage=3600",
    route: "maxttl",
    behaviour: { headers: { "cache-control": "s-maxage=3600" } },
    steps: [[0, "fresh"], [2_600, "stale"]],
  },
  {
    title: "max_ttl (2 s) caps Expires an hour ahead",
    route: "maxttl",
    behaviour: { dynamicHeaders: () => ({ date: httpDate(0), expires: httpDate(3600) }) },
    steps: [[0, "fresh"], [2_600, "stale"]],
  },
  {
    title: "max_ttl does not lengthen a shorter origin lifetime (max-age=0 stays stale)",
    route: "maxttl",
    behaviour: { headers: { "cache-control": "max-age=0" } },
    steps: [[0, "stale"]],
  },
  {
    title: "§4.2.2: heuristic = true: 10% of Date − Last-Modified (15 s ago: 1.5 s)",
    route: "heuristic",
    behaviour: { dynamicHeaders: () => ({ "last-modified": httpDate(-15) }) },
    steps: [[0, "fresh"], [2_600, "stale"]],
  },
  {
    title: "§4.2.2: heuristic = true: capped by max_ttl (Last-Modified a day ago: 8640 s, capped to 4 s)",
    route: "heuristic",
    behaviour: { dynamicHeaders: () => ({ "last-modified": httpDate(-86_400) }) },
    steps: [[0, "fresh"], [2_600, "fresh"], [4_600, "stale"]],
  },
  {
    title: "§4.2.2: heuristic = true never overrides explicit freshness (max-age=1, Last-Modified a day ago)",
    route: "heuristic",
    behaviour: { headers: { "cache-control": "max-age=1" }, dynamicHeaders: () => ({ "last-modified": httpDate(-86_400) }) },
    steps: [[0, "fresh"], [2_100, "stale"]],
  },
];

describe.concurrent("freshness = \"origin\": the origin's lifetime (RFC 9111 §4.2.1)", () => {
  for (const c of cases) {
    it(c.title, async () => {
      const path = `/rfc/${c.route}/${unique()}`;
      edge.origin.respond(path, c.behaviour);
      const replies = await timeline(edge, path, c.steps);
      // Every non-HIT after the MISS went to the origin: the body it served is its latest answer.
      const last = replies[replies.length - 1];
      if (last && cacheStatus(last) !== "HIT") expect(servedHit(last)).toBe(edge.origin.hits(path));
    }, 15_000);
  }
});

describe.concurrent("freshness = \"override\": the rule's ttl whatever the origin says", () => {
  it("an origin max-age=3600 is stale after the rule's ttl (2 s) and served under the rule's stale_while_revalidate", async () => {
    const path = `/rfc/override/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=3600" } });
    const [, hit, late] = await timeline(edge, path, [[0, "fresh"], [2_600, "stale"]]);
    expect(cacheStatus(late!)).toBe("STALE");
    expect(servedHit(late!)).toBe(servedHit(hit!));
  });

  it("an origin max-age=0 is fresh for the rule's ttl", async () => {
    const path = `/rfc/override/${unique()}`;
    edge.origin.respond(path, { headers: { "cache-control": "max-age=0" } });
    await timeline(edge, path, [[0, "fresh"]]);
    const hit = await storedHit(edge, path);
    expect(servedHit(hit)).toBe(edge.origin.hits(path));
  });
});
