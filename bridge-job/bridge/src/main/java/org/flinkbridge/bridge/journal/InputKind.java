package org.flinkbridge.bridge.journal;

/** What an input sent to the worker is: the kinds the exchange keeps in flight and the journal replays. */
public enum InputKind { RECORD, WATERMARK, END_OF_INPUT, BARRIER, CLOCK, TIMER }
