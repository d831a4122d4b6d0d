"""seqlab.lm"""
