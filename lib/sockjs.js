'use strict';
// sockjs-node 0.3 kept its entry point here; some code requires it by path.
module.exports = require('../index.js');
