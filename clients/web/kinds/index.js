// The kinds' page modules, one per interaction kind. A plain list, written by hand for
// now: the server will write this file from its own registry of kinds (with plug-in
// kinds' modules served from elsewhere), so it holds imports and nothing else; what the
// pages do with the list is in registry.js.

import checkin from "./checkin.js";
import codesign from "./codesign.js";
import draw from "./draw.js";
import poll from "./poll.js";
import qa from "./qa.js";
import quiz from "./quiz.js";
import wall from "./wall.js";

/** The kinds' modules, in their order. */
export const KINDS = [poll, quiz, codesign, draw, qa, checkin, wall];

/** The same modules by the name of their kind. */
export const BY_NAME = { poll, quiz, codesign, draw, qa, checkin, wall };
