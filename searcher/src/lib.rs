//! tunas-searcher library.
