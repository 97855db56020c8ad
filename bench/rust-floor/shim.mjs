// Entry module of the rust floor (bench only): the generated Worker, and an
// empty `Throttle` class because the bench binds one for every Tidegate build.
import { DurableObject } from "cloudflare:workers";

export { default } from "../index.js";

export class Throttle extends DurableObject {}
