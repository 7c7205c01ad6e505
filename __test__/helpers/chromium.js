'use strict';
// Debian's Chromium as the browser tests launch it through playwright-core
// (with a fresh --user-data-dir each time): headless, sandbox off (CI runs
// as root), nothing that would reach beyond loopback.

const CHROMIUM_PATH = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

module.exports = { CHROMIUM_PATH, CHROMIUM_ARGS };
