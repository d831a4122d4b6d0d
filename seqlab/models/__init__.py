"""seqlab.models"""
