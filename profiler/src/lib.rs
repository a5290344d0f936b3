//! tunas-profiler library.
