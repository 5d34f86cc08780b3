// An OCPP station written on the npm `ocpp-rpc` client (not our code), scripted for
// the gateway's e2e tests. Usage:
//   node station.cjs URL STATION_ID ocpp1.6|ocpp2.0.1 SCENARIO [ID_TOKEN]
// Scenarios: remote (wait for remote starts and stops; until SIGTERM), idtoken
// (an unknown card, then ID_TOKEN starts a supply the station ends), fault (a
// remote-started supply faults), reconnect (a remote-started supply ends while
// offline; the StopTransaction is sent after reconnecting, twice), bad (invalid
// frames). Each step is printed as one JSON line on stdout.
'use strict';
const { RPCClient } = require('ocpp-rpc');

const [url, identity, protocol, scenario, idToken] = process.argv.slice(2);
const v16 = protocol === 'ocpp1.6';
const POWER_W = 36000;
const METER_MS = 500;
let energyWh = 1000;
let tx = null; // {id, connector}
let metering = null;
let seqNo = 0;
let txCount = 0;
let client = null;
const meters = [];

const say = (event, fields = {}) => console.log(JSON.stringify({ event, ...fields }));
const now = () => new Date().toISOString();
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function connect() {
  client = new RPCClient({
    endpoint: url, identity, protocols: [protocol], strictMode: true, reconnect: false,
  });
  client.on('badMessage', ({ response }) => say('bad_message', { response }));
  client.on('message', ({ message, outbound }) => {
    if (outbound) return;
    const frame = JSON.parse(String(message));
    if (frame[0] === 4) say('call_error', { id: frame[1], code: frame[2] });
  });
  if (v16) {
    client.handle('RemoteStartTransaction', ({ params }) => {
      setTimeout(() => start(params.idTag, params.connectorId || 1, null), 50);
      return { status: 'Accepted' };
    });
    client.handle('RemoteStopTransaction', ({ params }) => {
      if (!tx || String(params.transactionId) !== tx.id) return { status: 'Rejected' };
      setTimeout(() => stop('Remote'), 50);
      return { status: 'Accepted' };
    });
  } else {
    client.handle('RequestStartTransaction', ({ params }) => {
      setTimeout(() => start(params.idToken.idToken, params.evseId || 1, params.remoteStartId), 50);
      return { status: 'Accepted' };
    });
    client.handle('RequestStopTransaction', ({ params }) => {
      if (!tx || params.transactionId !== tx.id) return { status: 'Rejected' };
      setTimeout(() => stop('Remote'), 50);
      return { status: 'Accepted' };
    });
  }
  client.handle('ChangeAvailability', () => ({ status: 'Accepted' }));
  client.handle('TriggerMessage', () => {
    setTimeout(() => status('Available'), 50);
    return { status: 'Accepted' };
  });
  await client.connect();
  const boot = v16
    ? await client.call('BootNotification', { chargePointVendor: 'ocpp-rpc', chargePointModel: 'node' })
    : await client.call('BootNotification', {
      chargingStation: { vendorName: 'ocpp-rpc', model: 'node' }, reason: 'PowerUp',
    });
  say('booted', { status: boot.status, interval: boot.interval });
  const beat = await client.call('Heartbeat', {});
  say('heartbeat', { currentTime: beat.currentTime });
}

async function status(state, errorCode = 'NoError') {
  if (v16) {
    await client.call('StatusNotification', { connectorId: 1, errorCode, status: state, timestamp: now() });
  } else {
    const connectorStatus = state === 'Charging' ? 'Occupied' : state;
    await client.call('StatusNotification', {
      timestamp: now(), connectorStatus, evseId: 1, connectorId: 1,
    });
  }
  say('status', { status: state });
}

function meterValue() {
  return [{
    timestamp: now(),
    sampledValue: v16
      ? [{ value: energyWh.toFixed(1), measurand: 'Energy.Active.Import.Register', unit: 'Wh' }]
      : [{ value: Math.round(energyWh * 10) / 10, measurand: 'Energy.Active.Import.Register',
        unitOfMeasure: { unit: 'Wh' } }],
  }];
}

function event(eventType, triggerReason, extra) {
  seqNo += 1;
  return { eventType, timestamp: now(), triggerReason, seqNo, ...extra };
}

async function start(tag, connector, remoteStartId) {
  let accepted;
  if (v16) {
    await status('Preparing');
    const answer = await client.call('StartTransaction', {
      connectorId: connector, idTag: tag, meterStart: Math.round(energyWh), timestamp: now(),
    });
    accepted = answer.idTagInfo.status === 'Accepted';
    if (accepted) tx = { id: String(answer.transactionId), connector };
  } else {
    txCount += 1;
    const id = `${identity}-n${txCount}`;
    const info = { transactionId: id, chargingState: 'Charging' };
    if (remoteStartId !== null) info.remoteStartId = remoteStartId;
    const answer = await client.call('TransactionEvent', event('Started',
      remoteStartId !== null ? 'RemoteStart' : 'Authorized', {
        transactionInfo: info, idToken: { idToken: tag, type: 'ISO14443' },
        evse: { id: connector, connectorId: 1 }, meterValue: meterValue(),
      }));
    accepted = (answer.idTokenInfo || { status: 'Accepted' }).status === 'Accepted';
    if (accepted) tx = { id, connector };
  }
  say('started', { accepted, tx: tx && tx.id });
  if (!accepted) return;
  if (v16) await status('Charging');
  metering = setInterval(() => sendMeter().catch((e) => say('error', { error: String(e) })), METER_MS);
}

async function sendMeter() {
  if (!tx) return;
  energyWh += POWER_W * (METER_MS / 1000) / 3600;
  if (v16) {
    await client.call('MeterValues', {
      connectorId: tx.connector, transactionId: Number(tx.id), meterValue: meterValue(),
    });
  } else {
    await client.call('TransactionEvent', event('Updated', 'MeterValuePeriodic', {
      transactionInfo: { transactionId: tx.id, chargingState: 'Charging' }, meterValue: meterValue(),
    }));
  }
  meters.push(energyWh);
  say('meter', { wh: energyWh });
}

function stopMessage(reason, offline = false) {
  if (v16) {
    return ['StopTransaction', {
      meterStop: Math.round(energyWh), timestamp: now(), transactionId: Number(tx.id), reason,
    }];
  }
  return ['TransactionEvent', event('Ended', reason === 'Remote' ? 'RemoteStop' : 'EVDeparted', {
    transactionInfo: { transactionId: tx.id, stoppedReason: reason }, meterValue: meterValue(),
    offline,
  })];
}

async function stop(reason) {
  clearInterval(metering);
  if (!tx) return;
  const [action, params] = stopMessage(reason);
  tx = null;
  await client.call(action, params);
  say('stopped', { reason });
  await status('Available');
}

async function untilMeters(n) {
  while (meters.length < n) await sleep(50);
}

async function main() {
  await connect();
  await status('Available');
  say('ready');
  if (scenario === 'remote') {
    await new Promise((resolve) => process.on('SIGTERM', resolve));
  } else if (scenario === 'idtoken') {
    const unknown = v16
      ? (await client.call('Authorize', { idTag: 'DEADBEEF' })).idTagInfo.status
      : (await client.call('Authorize', { idToken: { idToken: 'DEADBEEF', type: 'ISO14443' } }))
        .idTokenInfo.status;
    say('authorized', { token: 'DEADBEEF', status: unknown });
    await start(idToken, 1, null);
    await untilMeters(3);
    await stop(v16 ? 'EVDisconnected' : 'EVDisconnected');
  } else if (scenario === 'fault') {
    while (!tx) await sleep(50);
    await untilMeters(2);
    await status('Faulted', 'GroundFailure');
    await sleep(500);
    await stop('EmergencyStop');
  } else if (scenario === 'reconnect') {
    while (!tx) await sleep(50);
    await untilMeters(2);
    clearInterval(metering);
    await client.close({ force: true });
    say('offline');
    energyWh += 10;
    const queued = stopMessage('EVDisconnected', true);
    tx = null;
    await sleep(1500);
    await connect();
    for (let i = 0; i < 2; i += 1) {
      await client.call(queued[0], queued[1]);
      say('queued_sent', { attempt: i + 1 });
    }
    await status('Available');
  } else if (scenario === 'bad') {
    client.sendRaw('this is not json');
    client.sendRaw(JSON.stringify([2, 'bad-1', 'MakeCoffee', {}]));
    client.sendRaw(JSON.stringify([2, 'bad-2', v16 ? 'StatusNotification' : 'Heartbeat',
      v16 ? { connectorId: 'one' } : { unexpected: true }]));
    await sleep(1000);
    const beat = await client.call('Heartbeat', {});
    say('still_serving', { currentTime: beat.currentTime });
  }
  say('done');
  await client.close();
}

main().catch((error) => {
  say('error', { error: String(error && error.stack || error) });
  process.exit(1);
});
