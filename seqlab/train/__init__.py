"""seqlab.train"""
